# Sourced (bash): a throw-away PostgreSQL for tests and benchmarks, the
# way scripts/test.d/45-postgres.sh runs one. Debian's `postgresql`
# package (installed when missing if run as root, via scripts/lib/apt.sh);
# a cluster in a temporary directory, run as an unprivileged user
# (`postgres`, which the package creates; PostgreSQL refuses root),
# listening on 127.0.0.1 only on a free port with trust authentication,
# stopped and removed when the calling shell exits, also on failure.
#
#     . scripts/lib/pg.sh
#     pg_start                  # sets and exports the variables below
#     psql_url=$(pg_url mydb)   # the URL of another database on it
#
# After `pg_start`:
#   IPVTL_PG_URL  postgres://ipvtl@127.0.0.1:PORT/postgres (user `ipvtl`)
#   IPVTL_PG_BIN  the PostgreSQL bin directory (psql, pg_ctl, ...)
#   IPVTL_PG_CTL  `$IPVTL_PG_CTL start|stop`: starts or (fast) stops the
#                 server again, as a crash or a failover would
#   IPVTL_PG_DIR  the temporary directory (data, logs)
# `pg_stop` stops and removes it earlier. Call `pg_start` after setting
# your own EXIT trap: it runs before that trap, which it keeps (an EXIT
# trap set later replaces both). Without INT/TERM traps of the caller's,
# those signals exit the shell, so the cleanup runs on them too.
# The caller may set `apt_who` (its name, for the messages).

# shellcheck source=scripts/lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

pg_find_bin() {
    find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1
}

# The URL of database $1 on the running server.
pg_url() {
    echo "${IPVTL_PG_URL%/*}/$1"
}

pg_started=0

# Stops and removes the server; $1: the exit status that decides whether
# its log is shown (default: the last command's).
pg_stop() {
    local rc=${1:-$?}
    if [ "$pg_started" = 1 ]; then
        "${pg_as_user[@]}" "$IPVTL_PG_BIN/pg_ctl" -D "$IPVTL_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
        pg_started=0
    fi
    if [ -n "${IPVTL_PG_DIR:-}" ] && [ -d "$IPVTL_PG_DIR" ]; then
        if [ "$rc" != 0 ] && [ -f "$IPVTL_PG_DIR/postgres.log" ]; then
            echo "${apt_who:-pg}: the PostgreSQL server's log:" >&2
            tail -n 40 "$IPVTL_PG_DIR/postgres.log" >&2 || true
        fi
        rm -rf "$IPVTL_PG_DIR"
    fi
    return 0
}

pg_start() {
    local who=${apt_who:-pg} bin port work prev
    bin=$(pg_find_bin)
    if [ -z "$bin" ] || ! [ -x "$bin/postgres" ]; then
        apt_install postgresql
        bin=$(pg_find_bin)
    fi
    if [ -z "$bin" ] || ! [ -x "$bin/postgres" ]; then
        echo "$who: no postgres binary under /usr/lib/postgresql/*/bin" >&2
        return 1
    fi

    # Who runs the server: never root.
    pg_as_user=()
    if [ "$(id -u)" = 0 ]; then
        if ! id -u postgres >/dev/null 2>&1; then
            useradd --system --no-create-home --shell /usr/sbin/nologin postgres
        fi
        pg_as_user=(runuser -u postgres --)
    fi

    work=$(mktemp -d /tmp/ipvtl-pg.XXXXXX)
    chmod 755 "$work"
    if [ "$(id -u)" = 0 ]; then chown postgres "$work"; fi
    export IPVTL_PG_BIN=$bin IPVTL_PG_DIR=$work

    # Stopped and removed on exit, before whatever the caller's EXIT trap
    # does, with the exit status kept for it (and errexit off: the rest of
    # the cleanup runs whatever fails).
    eval "set -- $(trap -p EXIT)"
    prev=${3:-}
    # shellcheck disable=SC2064 # expanded now: the caller's trap as it is
    trap "pg_rc=\$?; set +e; pg_stop \$pg_rc; (exit \$pg_rc); $prev" EXIT
    [ -n "$(trap -p INT)" ] || trap 'exit 130' INT
    [ -n "$(trap -p TERM)" ] || trap 'exit 143' TERM

    "${pg_as_user[@]}" "$bin/initdb" -D "$work/data" -U ipvtl --auth=trust -E UTF8 --no-sync >"$work/initdb.log" 2>&1 || {
        cat "$work/initdb.log" >&2
        return 1
    }

    # A free loopback port (the kernel picks one; a race with another
    # process taking it in between is reported by postgres failing to start).
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # `$work/pg-ctl start|stop`: a fast stop closes the connections at
    # once, as a crash or a failover would.
    {
        echo '#!/usr/bin/env bash'
        echo 'set -euo pipefail'
        printf 'opts=%q\n' "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' -c fsync=off -c max_connections=100"
        echo 'case "${1:-}" in'
        printf '    start) exec %s %q -D %q -l %q -w -t 60 -o "$opts" start >/dev/null ;;\n' \
            "${pg_as_user[*]}" "$bin/pg_ctl" "$work/data" "$work/postgres.log"
        printf '    stop) exec %s %q -D %q -m fast -w -t 60 stop >/dev/null ;;\n' "${pg_as_user[*]}" "$bin/pg_ctl" "$work/data"
        echo '    *) echo "usage: pg-ctl start|stop" >&2; exit 2 ;;'
        echo 'esac'
    } >"$work/pg-ctl"
    chmod 755 "$work/pg-ctl"
    export IPVTL_PG_CTL=$work/pg-ctl
    "$work/pg-ctl" start
    pg_started=1
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U ipvtl -d postgres -t 30
    export IPVTL_PG_URL="postgres://ipvtl@127.0.0.1:$port/postgres"
    echo "$who: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($work)" >&2
}
