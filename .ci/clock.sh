#!/usr/bin/env bash
# Run a command with the wall clock moved to a chosen UTC time of day (and,
# optionally, another time zone), to show that the tests do not depend on it.
#
#   bash .ci/clock.sh HH:MM:SS COMMAND [ARG]...
#
# The clock is moved forward (never back) to the next HH:MM:SS UTC and keeps
# ticking from there, in this process and every process it starts, SQLite's
# 'now' included (libfaketime, Debian's 'faketime' package; installed here
# when missing and we are root). Monotonic clocks move by the same offset
# (left alone, libfaketime makes Python's sleep fail with EINVAL). A PostgreSQL
# server started elsewhere keeps the real clock: it is at most a day behind.
set -euo pipefail

die() { printf 'clock.sh: error: %s\n' "$*" >&2; exit 1; }
[ $# -ge 2 ] || { printf 'usage: bash %s HH:MM:SS COMMAND [ARG]...\n' "$0" >&2; exit 2; }
target=$1; shift
[[ $target =~ ^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$ ]] || die "time of day must be HH:MM:SS (UTC), got '$target'"

find_lib() {
    local f
    for f in /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1; do
        [ -f "$f" ] && { printf '%s' "$f"; return 0; }
    done
    return 1
}
if ! lib=$(find_lib); then
    [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 || die "libfaketime not found (install Debian's 'faketime' package)"
    printf 'clock.sh: installing the Debian faketime package\n' >&2
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y faketime </dev/null >&2
    lib=$(find_lib) || die "libfaketime still not found after installing 'faketime'"
fi

now=$(date -u +%s)
then=$(date -u -d "$(date -u +%F) $target" +%s)
[ "$then" -ge "$now" ] || then=$((then + 86400))
offset=$((then - now))
printf 'clock.sh: running with the clock at %s UTC (+%ss)%s\n' \
    "$(date -u -d "@$then" '+%F %T')" "$offset" "${TZ:+, TZ=$TZ}" >&2

export LD_PRELOAD=$lib${LD_PRELOAD:+:$LD_PRELOAD}
export FAKETIME="+${offset}s"
exec "$@"
