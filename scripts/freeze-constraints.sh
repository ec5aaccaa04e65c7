#!/usr/bin/env bash
# Rewrite constraints.txt from the environment the last `.ci/run` made (.ci/.venv), keeping its
# header: run it after `TAIZHANG_CI_UNPINNED=1 bash .ci/run` passed, and commit the result with
# the CI run's outcome in the message (docs/decisions/0030-tested-dependency-set.md).
#
#   bash scripts/freeze-constraints.sh
set -euo pipefail

cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
VPY=.ci/.venv/bin/python
[ -x "$VPY" ] || { printf 'freeze-constraints.sh: error: no %s: run .ci/run first\n' "$VPY" >&2; exit 1; }

header=$(sed -n '/^#/p;/^[^#]/q' constraints.txt)
frozen=$("$VPY" -m pip freeze --exclude-editable --disable-pip-version-check)
[ -n "$frozen" ] || { printf 'freeze-constraints.sh: error: pip freeze printed nothing\n' >&2; exit 1; }
printf '%s\n%s\n' "$header" "$frozen" > constraints.txt
printf 'constraints.txt: %d packages\n' "$(printf '%s\n' "$frozen" | grep -c .)" >&2
