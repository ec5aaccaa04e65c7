#!/usr/bin/env bash
# Throwaway PostgreSQL server for the taizhang test suite.
#
#   bash .ci/postgres.sh start [DIR]   start (or reuse) a server; prints its URL on stdout
#   bash .ci/postgres.sh stop  [DIR]   stop it and remove DIR
#
# DIR defaults to ${TMPDIR:-/tmp}/taizhang-pg; the port defaults to 55432
# (override with TAIZHANG_PG_PORT).  The server listens on 127.0.0.1 only,
# uses trust authentication (loopback, throwaway) and keeps its unix socket
# inside DIR.  The only line written to stdout is the URL:
#   postgresql://postgres:postgres@127.0.0.1:PORT/postgres
# Everything else goes to stderr.
set -euo pipefail

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { printf 'usage: bash %s start|stop [DIR]\n' "$0" >&2; exit 2; }

[ $# -ge 1 ] && [ $# -le 2 ] || usage
ACTION=$1
DIR=${2:-${TMPDIR:-/tmp}/taizhang-pg}
PORT=${TAIZHANG_PG_PORT:-55432}

[[ $PORT =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] \
    || die "invalid port '$PORT' (TAIZHANG_PG_PORT)"

# Absolute DIR without trailing slashes; refuse obviously dangerous values
# because 'stop' removes it.
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
while [ "${#DIR}" -gt 1 ] && [ "${DIR%/}" != "$DIR" ]; do DIR=${DIR%/}; done
case $DIR in
    / | /tmp | /var/tmp | /root | /home | /usr | /var | /etc) die "refusing to use '$DIR' as the server directory" ;;
esac

DATA=$DIR/data
SOCK=$DIR/run
LOGF=$DIR/postgres.log
MARK=$DIR/.taizhang-pg   # marks DIR as created by this script (so 'stop' may delete it)
URL="postgresql://postgres:postgres@127.0.0.1:$PORT/postgres"

# Connection settings from the caller's environment must not leak in.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE \
      PGSERVICE PGSERVICEFILE PGOPTIONS PGDATA PGSSLMODE PGCONNECT_TIMEOUT

is_root() { [ "$(id -u)" -eq 0 ]; }

# Highest-versioned Debian server bindir, else pg_config --bindir.
find_bindir() {
    local d best=""
    while IFS= read -r d; do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then best=$d; fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
    if [ -z "$best" ] && command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null || true)
        if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then best=$d; fi
    fi
    printf '%s' "$best"
}

# Run a command as the user that owns the cluster (postgres when we are root:
# the server refuses to run as root).
as_pg() {
    if is_root; then
        if command -v runuser >/dev/null 2>&1; then
            (cd / && runuser -u postgres -- "$@")
        else
            (cd / && su postgres -s /bin/bash -c "$(printf '%q ' "$@")")
        fi
    else
        "$@"
    fi
}

tool() {  # path of a client tool: from BINDIR if there, else from PATH
    if [ -x "$BINDIR/$1" ]; then printf '%s' "$BINDIR/$1"
    else command -v "$1" || die "$1 not found"
    fi
}

# Port of the postmaster running on DATA; fails if none is running.
running_port() {
    [ -f "$DATA/postmaster.pid" ] || return 1
    as_pg "$BINDIR/pg_ctl" status -D "$DATA" >/dev/null 2>&1 || return 1
    sed -n 4p "$DATA/postmaster.pid"
}

wait_ready() {  # bounded (~30 s) wait for pg_isready over TCP
    local isready deadline=$((SECONDS + 30))
    isready=$(tool pg_isready)
    until "$isready" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -t 2; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.5
    done
}

show_log() {
    if [ -f "$LOGF" ]; then
        log "last lines of $LOGF:"
        tail -n 30 "$LOGF" >&2 || true
    fi
}

ensure_binaries() {
    BINDIR=$(find_bindir)
    if [ -z "$BINDIR" ]; then
        is_root || die "PostgreSQL server binaries not found (install the Debian 'postgresql' package or run as root)"
        command -v apt-get >/dev/null 2>&1 || die "PostgreSQL server binaries not found and apt-get is not available"
        log "installing the Debian 'postgresql' package"
        apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql </dev/null >&2
        BINDIR=$(find_bindir)
        [ -n "$BINDIR" ] || die "PostgreSQL server binaries still not found after installing 'postgresql'"
    fi
    if is_root; then
        id -u postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to run the server as"
    fi
}

start() {
    ensure_binaries

    if [ -e "$DIR" ] && [ ! -f "$MARK" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
        die "$DIR exists, is not empty and was not created by this script; refusing to use it"
    fi

    # Idempotence: reuse a server already running in DIR on the same port.
    local port
    if port=$(running_port); then
        [ "$port" = "$PORT" ] || die "a server is already running in $DIR on port $port, not $PORT; run 'bash $0 stop $DIR' first"
        log "server already running in $DIR on port $PORT"
        wait_ready || { show_log; die "server in $DIR is running but not accepting connections"; }
        printf '%s\n' "$URL"
        return 0
    fi

    # Someone else on the port?
    local rc=0
    "$(tool pg_isready)" -q -h 127.0.0.1 -p "$PORT" -t 3 || rc=$?
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 1 ]; then
        die "another PostgreSQL server is already listening on 127.0.0.1:$PORT; set TAIZHANG_PG_PORT to a free port"
    fi

    mkdir -p "$DIR"
    touch "$MARK"
    if is_root; then chown postgres:postgres "$DIR"; fi
    chmod 700 "$DIR"
    as_pg test -w "$DIR" -a -x "$DIR" \
        || die "user '$(is_root && echo postgres || id -un)' cannot write to $DIR (a parent directory may be inaccessible); pass another DIR or set TMPDIR"

    if [ ! -f "$DATA/PG_VERSION" ]; then
        rm -rf -- "$DATA"
        log "initialising a new cluster in $DATA ($BINDIR)"
        as_pg "$BINDIR/initdb" -D "$DATA" -A trust -U postgres -E UTF8 --locale=C >&2
        # Unix socket inside DIR (sun_path is limited to 107 bytes).
        local sockdirs=$SOCK
        if [ $(( ${#SOCK} + 16 )) -gt 107 ]; then
            log "warning: $SOCK is too long for a unix socket path; unix sockets disabled (TCP only)"
            sockdirs=""
        fi
        printf "\n# added by .ci/postgres.sh\nunix_socket_directories = '%s'\n" \
            "${sockdirs//\'/\'\'}" >>"$DATA/postgresql.conf"
    fi
    as_pg mkdir -p "$SOCK"

    log "starting PostgreSQL on 127.0.0.1:$PORT (data in $DATA, log in $LOGF)"
    if ! as_pg "$BINDIR/pg_ctl" start -D "$DATA" -l "$LOGF" -w -t 30 \
            -o "-c listen_addresses=127.0.0.1 -p $PORT -c max_connections=200" </dev/null >&2; then
        show_log
        die "pg_ctl start failed"
    fi
    wait_ready || { show_log; die "server did not accept connections on 127.0.0.1:$PORT within 30 s"; }

    # Trust auth ignores passwords, but set one so URLs carrying it are valid elsewhere too.
    "$(tool psql)" -X -q -w -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres \
        -c "ALTER ROLE postgres PASSWORD 'postgres'" </dev/null >&2 \
        || { show_log; die "could not set the postgres role password"; }

    printf '%s\n' "$URL"
}

stop() {
    if [ ! -e "$DIR" ]; then
        log "nothing to stop: $DIR does not exist"
        return 0
    fi
    if [ ! -f "$MARK" ]; then
        if [ -d "$DIR" ] && [ -z "$(ls -A "$DIR" 2>/dev/null)" ]; then
            rmdir -- "$DIR"
            return 0
        fi
        die "$DIR was not created by this script; refusing to remove it"
    fi
    BINDIR=$(find_bindir)
    if [ -n "$BINDIR" ] && [ -f "$DATA/postmaster.pid" ]; then
        if as_pg "$BINDIR/pg_ctl" status -D "$DATA" >/dev/null 2>&1; then
            log "stopping PostgreSQL in $DATA"
            if ! as_pg "$BINDIR/pg_ctl" stop -D "$DATA" -m fast -w -t 30 </dev/null >&2; then
                log "fast shutdown failed; trying immediate shutdown"
                as_pg "$BINDIR/pg_ctl" stop -D "$DATA" -m immediate -w -t 30 </dev/null >&2 \
                    || die "could not stop the server in $DATA"
            fi
        fi
    fi
    rm -rf -- "$DIR"
    log "removed $DIR"
}

case $ACTION in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
