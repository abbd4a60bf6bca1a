#!/usr/bin/env bash
# The dashboard's store against a real PostgreSQL (Debian's `postgresql`
# package, installed when missing if run as root). A throw-away cluster in
# a temporary directory, run as an unprivileged user (`postgres`, which the
# package creates; PostgreSQL refuses root), listening on 127.0.0.1 only on
# a free port with trust authentication, stopped and removed at the end,
# also on failure. Runs the ignored tests of
# examples/dashboard/tests/store_postgres.rs against it: the store suite
# (src/store/suite.rs, the one SQLite runs) and the binary restarted on
# `--store postgres://...` keeping the audit, batches and maintenance, and
# the server stopped and started under a running binary (`$work/pg-ctl`,
# passed as IPVTL_TEST_PG_CTL). Then tests/instances.rs: several
# dashboards sharing one simulated fleet through it (leases, failover,
# fencing, cross-instance locks, one heal and one alert).
set -euo pipefail
cd "$(dirname "$0")/../.."

apt_who=45-postgres
# shellcheck source=scripts/lib/apt.sh
. scripts/lib/apt.sh
pgbin() { find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pgbin)" ] || ! [ -x "$(pgbin)/postgres" ]; then
    apt_install postgresql
fi
bin=$(pgbin)
if [ -z "$bin" ] || ! [ -x "$bin/postgres" ]; then
    echo "45-postgres: no postgres binary under /usr/lib/postgresql/*/bin" >&2
    exit 1
fi

# Who runs the server: never root.
as_user=()
if [ "$(id -u)" = 0 ]; then
    if ! id -u postgres >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    fi
    as_user=(runuser -u postgres --)
fi

# Build before the server starts, so it runs no longer than the tests.
cargo test -p ipvtl-dashboard --test store_postgres --test instances --no-run --quiet

work=$(mktemp -d /tmp/ipvtl-pg.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres "$work"
data=$work/data
started=0
cleanup() {
    local rc=$?
    if [ "$started" = 1 ]; then
        "${as_user[@]}" "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ "$rc" != 0 ] && [ -f "$work/postgres.log" ]; then
        echo "45-postgres: the server's log:" >&2
        tail -n 40 "$work/postgres.log" >&2 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

"${as_user[@]}" "$bin/initdb" -D "$data" -U ipvtl --auth=trust -E UTF8 --no-sync >"$work/initdb.log" 2>&1 || {
    cat "$work/initdb.log" >&2
    exit 1
}

# A free loopback port (the kernel picks one; a race with another process
# taking it in between is reported by postgres failing to start).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# `$work/pg-ctl start|stop`: the tests also stop the server under a running
# dashboard and start it again (IPVTL_TEST_PG_CTL). A fast stop closes the
# connections at once, as a crash or a failover would.
{
    echo '#!/usr/bin/env bash'
    echo 'set -euo pipefail'
    printf 'opts=%q\n' "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' -c fsync=off -c max_connections=100"
    echo 'case "${1:-}" in'
    printf '    start) exec %s %q -D %q -l %q -w -t 60 -o "$opts" start >/dev/null ;;\n' \
        "${as_user[*]}" "$bin/pg_ctl" "$data" "$work/postgres.log"
    printf '    stop) exec %s %q -D %q -m fast -w -t 60 stop >/dev/null ;;\n' "${as_user[*]}" "$bin/pg_ctl" "$data"
    echo '    *) echo "usage: pg-ctl start|stop" >&2; exit 2 ;;'
    echo 'esac'
} >"$work/pg-ctl"
chmod 755 "$work/pg-ctl"
"$work/pg-ctl" start
started=1
"$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U ipvtl -d postgres -t 30
echo "45-postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($work)"

IPVTL_TEST_PG_URL="postgres://ipvtl@127.0.0.1:$port/postgres" IPVTL_TEST_PG_CTL="$work/pg-ctl" \
    timeout 300 cargo test -p ipvtl-dashboard --test store_postgres -- --ignored
# Several dashboards sharing one fleet through it (tests/instances.rs):
# three processes over 1 000 simulated servers, one test at a time.
IPVTL_TEST_PG_URL="postgres://ipvtl@127.0.0.1:$port/postgres" \
    timeout 900 cargo test -p ipvtl-dashboard --test instances -- --ignored --test-threads=1 --nocapture
