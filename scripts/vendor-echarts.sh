#!/usr/bin/env bash
# Vendor Apache ECharts from its npm package into the Python package, so the web pages work on an
# office network without internet (nothing is fetched at run time).
#
#   bash scripts/vendor-echarts.sh [VERSION]     (default: the pinned version below)
#
# Fetches echarts@VERSION with `npm pack` (npm checks the tarball against the registry's integrity
# hash) into a temporary directory and writes, in commands/web/static/vendor/:
#   echarts.min.js        dist/echarts.min.js from the package
#   echarts.LICENSE.txt   the package's LICENSE (Apache-2.0)
#   echarts.NOTICE.txt    the package's NOTICE
#   VERSIONS              package, version, tarball integrity and the sha256 of each file above
# tests/unit/test_vendored.py checks the files against VERSIONS. Commit the result.
set -euo pipefail

ECHARTS_VERSION=${1:-5.6.0}

die() { printf 'vendor-echarts.sh: error: %s\n' "$*" >&2; exit 1; }

[[ $ECHARTS_VERSION =~ ^5\.[0-9]+\.[0-9]+$ ]] || die "expected a 5.x.y release version, got '$ECHARTS_VERSION'"
command -v npm >/dev/null 2>&1 || die "npm not found"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found"

cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
DEST=$PWD/commands/web/static/vendor

TMP=$(mktemp -d)
trap 'rm -rf -- "$TMP"' EXIT

# --json reports the tarball's file name and integrity; the log goes to stderr.
npm pack "echarts@$ECHARTS_VERSION" --pack-destination "$TMP" --json --silent </dev/null >"$TMP/pack.json" \
    || die "npm pack echarts@$ECHARTS_VERSION failed"
read -r TARBALL INTEGRITY < <(node -e '
    const [p] = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(p.filename, p.integrity);' "$TMP/pack.json") || die "could not read npm pack's report"
[ -f "$TMP/$TARBALL" ] || die "npm pack did not write $TARBALL"

mkdir "$TMP/x"
tar -xzf "$TMP/$TARBALL" -C "$TMP/x"
PKG=$TMP/x/package
VERSION=$(node -p 'require(process.argv[1]).version' "$PKG/package.json")
[ "$VERSION" = "$ECHARTS_VERSION" ] || die "the tarball holds echarts $VERSION, not $ECHARTS_VERSION"
for f in dist/echarts.min.js LICENSE NOTICE; do
    [ -s "$PKG/$f" ] || die "echarts@$VERSION has no $f"
done

mkdir -p "$DEST"
install -m 0644 "$PKG/dist/echarts.min.js" "$DEST/echarts.min.js"
install -m 0644 "$PKG/LICENSE" "$DEST/echarts.LICENSE.txt"
install -m 0644 "$PKG/NOTICE" "$DEST/echarts.NOTICE.txt"

{
    printf '# Written by scripts/vendor-echarts.sh; do not edit by hand.\n'
    printf '# file  package@version  sha256  npm tarball integrity\n'
    for f in echarts.min.js echarts.LICENSE.txt echarts.NOTICE.txt; do
        printf '%s echarts@%s sha256:%s %s\n' "$f" "$VERSION" "$(sha256sum "$DEST/$f" | cut -d' ' -f1)" "$INTEGRITY"
    done
} >"$DEST/VERSIONS"

printf 'vendored echarts@%s into %s\n' "$VERSION" "${DEST#"$PWD"/}" >&2
cat "$DEST/VERSIONS" >&2
