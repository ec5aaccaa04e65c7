#!/bin/sh
# Render the printed funding sheets the way a county prints them, to look at them (docs/funds-print.png,
# docs/funds-cost-print.png, docs/funds-trace-print.png).
#
#   docs/render_funds.sh [OUT_DIR]
#
# Fills a throw-away store with four communities, a few service records and two funding lines
# (tests/funds_helpers.py, saved through the application), exports in Chinese
# `funds ledger --by unit --period 2026`, `funds cost --by community --period 2026` and
# `funds trace 民政局/贺民发〔2026〕12号` as xlsx, converts each to PDF with LibreOffice headless and
# its first page to PNG at 80 dpi.
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
from tests.helpers import enroll, establish, record, register

store = Path(sys.argv[1])
service = LedgerService.open(parse_url(f"sqlite:///{store}/taizhang.db"), store / "taizhang.key")
names = {"HZ-A": "石门社区", "HZ-B": "新塘社区", "HZ-C": "大岭社区", "ZS-D": "龙井社区"}
for code, (county, township) in CITY.items():
    establish(service, code, county=county, township=township, name=names[code])
people = {"HZ-A": ("R1", "R2", "R3"), "HZ-B": ("R1", "R2")}
done = {}
for code, residents in people.items():
    register(service, code, "P1")
    for resident in residents:
        enroll(service, code, resident)
    done[code] = [
        record(service, code, residents=list(residents[i : i + 2]), occurred_at=f"2026-03-0{i + 2} 09:30")["record_id"]
        for i in range(len(residents))
    ]
lines = Lines(service)
a = lines.allocate("民政局", "贺民发〔2026〕12号", 1_200_000_00, "county:八步区", "2026-03-01", purpose="幸福院运营补助")
lines.transfer(a, "county:八步区", "township:八步区/贺街镇", 500_000_00, "2026-03-05")
lines.transfer(a, "township:八步区/贺街镇", "community:HZ-A", 200_000_00, "2026-03-06")
lines.transfer(a, "township:八步区/贺街镇", "community:HZ-B", 150_000_00, "2026-03-06")
lines.transfer(a, "county:八步区", "community:HZ-C", 150_000_00, "2026-03-07")
first = lines.spend(a, "community:HZ-A", 50_000_00, "2026-03-10", purpose="老人助餐", records=done["HZ-A"][:1])
lines.spend(a, "community:HZ-A", 30_005, "2026-04-10", purpose="慰问品", records=done["HZ-A"])
lines.spend(a, "community:HZ-B", 80_000_00, "2026-05-10", purpose="幸福院修缮", records=done["HZ-B"])
lines.spend(a, "community:HZ-C", 100_000_00, "2026-05-10", purpose="设备")
lines.reverse(a, first, "2026-04-01")
lines.give_back(a, "county:八步区", 100_000_00, "2026-11-01")
b = lines.allocate("妇联", "贺妇发〔2026〕3号", 300_000_00, "community:ZS-D", "2026-02-01", purpose="儿童之家")
lines.spend(b, "community:ZS-D", 120_000_00, "2026-06-01", purpose="课桌椅")
service.close()
PY
taizhang projections run >/dev/null
taizhang --lang zh funds ledger --by unit --period 2026 --format xlsx --output "$OUT/funds.xlsx" --force
taizhang --lang zh funds cost --by community --period 2026 --format xlsx --output "$OUT/funds-cost.xlsx" --force
taizhang --lang zh funds trace 民政局/贺民发〔2026〕12号 --format xlsx --output "$OUT/funds-trace.xlsx" --force
for sheet in funds funds-cost funds-trace; do
  soffice --headless --convert-to pdf --outdir "$OUT" "$OUT/$sheet.xlsx" >/dev/null
  pdftoppm -png -r 80 -f 1 -l 1 -singlefile "$OUT/$sheet.pdf" "$OUT/$sheet-print"
  echo "$OUT/$sheet-print.png"
done
