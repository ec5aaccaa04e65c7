#!/bin/sh
# Render a printed 资金台账 (funds ledger) the way a county prints it, to look at it (docs/funds-print.png).
#
#   docs/render_funds.sh [OUT_DIR]
#
# Fills a throw-away store with four communities and two funding lines (tests/funds_helpers.py,
# saved through the application), exports `funds ledger --by unit --period 2026 --format xlsx` in
# Chinese, converts it to PDF with LibreOffice headless and its first page to PNG at 80 dpi.
# Needs soffice and pdftoppm (poppler-utils), and a CJK font (fonts-noto-cjk). Run from the top of
# the repository; PYTHON defaults to `python`.
set -eu
OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"
PYTHON=${PYTHON:-python}
STORE=$(mktemp -d)
trap 'rm -rf "$STORE"' EXIT
taizhang() { "$PYTHON" -m commands.cli --db "sqlite:///$STORE/taizhang.db" --key-file "$STORE/taizhang.key" "$@"; }
taizhang init >/dev/null
"$PYTHON" - "$STORE" <<'PY'
import sys
from pathlib import Path

from commands.app import LedgerService
from infra.store import parse_url
from tests.funds_helpers import CITY, Lines
from tests.helpers import establish

store = Path(sys.argv[1])
service = LedgerService.open(parse_url(f"sqlite:///{store}/taizhang.db"), store / "taizhang.key")
names = {"HZ-A": "石门社区", "HZ-B": "新塘社区", "HZ-C": "大岭社区", "ZS-D": "龙井社区"}
for code, (county, township) in CITY.items():
    establish(service, code, county=county, township=township, name=names[code])
lines = Lines(service)
a = lines.allocate("民政局", "贺民发〔2026〕12号", 1_200_000_00, "county:八步区", "2026-03-01", purpose="幸福院运营补助")
lines.transfer(a, "county:八步区", "township:八步区/贺街镇", 500_000_00, "2026-03-05")
lines.transfer(a, "township:八步区/贺街镇", "community:HZ-A", 200_000_00, "2026-03-06")
lines.transfer(a, "township:八步区/贺街镇", "community:HZ-B", 150_000_00, "2026-03-06")
lines.transfer(a, "county:八步区", "community:HZ-C", 150_000_00, "2026-03-07")
first = lines.spend(a, "community:HZ-A", 50_000_00, "2026-03-10", purpose="老人助餐")
lines.spend(a, "community:HZ-A", 30_005, "2026-04-10", purpose="慰问品")
lines.spend(a, "community:HZ-B", 80_000_00, "2026-05-10", purpose="幸福院修缮")
lines.spend(a, "community:HZ-C", 100_000_00, "2026-05-10", purpose="设备")
lines.reverse(a, first, "2026-04-01")
lines.give_back(a, "county:八步区", 100_000_00, "2026-11-01")
b = lines.allocate("妇联", "贺妇发〔2026〕3号", 300_000_00, "community:ZS-D", "2026-02-01", purpose="儿童之家")
lines.spend(b, "community:ZS-D", 120_000_00, "2026-06-01", purpose="课桌椅")
service.close()
PY
taizhang --lang zh funds ledger --by unit --period 2026 --format xlsx --output "$OUT/funds.xlsx" --force
soffice --headless --convert-to pdf --outdir "$OUT" "$OUT/funds.xlsx" >/dev/null
pdftoppm -png -r 80 -f 1 -l 1 -singlefile "$OUT/funds.pdf" "$OUT/funds-print"
echo "$OUT/funds-print.png"
