#!/usr/bin/env bash
# The dashboard's store against a real PostgreSQL: a throw-away server
# from scripts/lib/pg.sh (Debian's `postgresql` package, installed when
# missing if run as root; a cluster in a temporary directory run as the
# unprivileged `postgres` user, on 127.0.0.1 only on a free port with trust
# authentication, stopped and removed at the end, also on failure). Runs the ignored tests of
# examples/dashboard/tests/store_postgres.rs against it: the store suite
# (src/store/suite.rs, the one SQLite runs) and the binary restarted on
# `--store postgres://...` keeping the audit, batches and maintenance, and
# the server stopped and started under a running binary (its `pg-ctl`,
# passed as IPVTL_TEST_PG_CTL). Then tests/instances.rs: several
# dashboards sharing one simulated fleet through it (leases, failover,
# fencing, cross-instance locks, one heal and one alert).
set -euo pipefail
cd "$(dirname "$0")/../.."

apt_who=45-postgres
# shellcheck source=scripts/lib/pg.sh
. scripts/lib/pg.sh

# Build before the server starts, so it runs no longer than the tests.
cargo test -p ipvtl-dashboard --test store_postgres --test instances --no-run --quiet
pg_start

IPVTL_TEST_PG_URL="$IPVTL_PG_URL" IPVTL_TEST_PG_CTL="$IPVTL_PG_CTL" \
    timeout 300 cargo test -p ipvtl-dashboard --test store_postgres -- --ignored
# Several dashboards sharing one fleet through it (tests/instances.rs):
# three processes over 1 000 simulated servers, one test at a time.
IPVTL_TEST_PG_URL="$IPVTL_PG_URL" \
    timeout 900 cargo test -p ipvtl-dashboard --test instances -- --ignored --test-threads=1 --nocapture
