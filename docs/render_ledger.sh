#!/bin/sh
# Render a printed 台账 the way a township prints it, to look at it (docs/ledger-print.png).
#
#   docs/render_ledger.sh [PERIOD] [TOWNSHIP] [OUT_DIR]
#
# Fills a throw-away demo store, exports `ledger entries --format xlsx` in Chinese for
# TOWNSHIP (default 八步区/贺街镇) and PERIOD (default: last month), converts it to PDF with
# LibreOffice headless and its first page to PNG at 80 dpi. Needs soffice and pdftoppm
# (poppler-utils). Run from the top of the repository; PYTHON defaults to `python`.
set -eu
PERIOD=${1:-$(date -d "$(date +%Y-%m-01) -1 day" +%Y-%m)}
TOWNSHIP=${2:-八步区/贺街镇}
OUT=${3:-$(mktemp -d)}
mkdir -p "$OUT"
PYTHON=${PYTHON:-python}
STORE=$(mktemp -d)
trap 'rm -rf "$STORE"' EXIT
taizhang() { "$PYTHON" -m commands.cli --db "sqlite:///$STORE/taizhang.db" --key-file "$STORE/taizhang.key" "$@"; }
taizhang demo >/dev/null
taizhang --lang zh ledger entries --township "$TOWNSHIP" --period "$PERIOD" --format xlsx --output "$OUT/ledger.xlsx" --force
soffice --headless --convert-to pdf --outdir "$OUT" "$OUT/ledger.xlsx" >/dev/null
pdftoppm -png -r 80 -f 1 -l 1 -singlefile "$OUT/ledger.pdf" "$OUT/ledger-print"
echo "$OUT/ledger-print.png"
