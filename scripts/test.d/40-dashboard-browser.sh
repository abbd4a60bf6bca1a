#!/usr/bin/env bash
# The dashboard page in real headless Chromium. Against `ipvtl-dashboard
# --demo 12`: the overview (map, hover, click to a server, the table, the
# filters in the URL, a batch by filter with its dry run and report); the
# cards: loads the page, waits for live data, restarts a channel through the
# UI and watches it go stopping -> idle -> running, switches to zh, checks a
# phone-width layout. At fleet scale, a release-built dashboard over
# `ipvtl-sim --count 10000 --channels 16` with 1 % of the servers changing
# per sweep: the issue's targets (first overview < 1.5 s, < 10 000 DOM
# nodes, JS heap < 60 MB, no task over 100 ms while live, < 1 MB a minute
# after the first load), measured in the browser and printed.
# Screenshots go to artifacts/. Installs Debian's chromium, a CJK font (and
# node, if missing) when run as root.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

apt_who=40-dashboard-browser
# shellcheck source=scripts/lib/apt.sh
. scripts/lib/apt.sh
if ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium chromium-driver
fi
# A CJK font, so the screenshots show the page's "中文" switch and the zh
# text as a Chinese-speaking operator sees them (not as empty boxes).
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then
    apt_install fonts-wqy-zenhei
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi

cargo build -p ipvtl-dashboard
(cd examples/dashboard/e2e && npm ci --no-audit --no-fund --loglevel=error)

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# Starts `ipvtl-dashboard --demo N` on a free loopback port and sets
# demo_url (not a $(...) subshell: the pid must reach cleanup).
start_demo() {
    local n=$1 log="$work/out-$1.log"
    ./target/debug/ipvtl-dashboard --demo "$n" --listen 127.0.0.1:0 --audit-log "$work/audit-$n.jsonl" >"$log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    local url=""
    for _ in $(seq 1 300); do
        url=$(sed -n 's|^serving on \(http://[^ ]*\)$|\1|p' "$log")
        [ -n "$url" ] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$log" >&2
            echo "40-dashboard-browser: the dashboard (--demo $n) exited" >&2
            return 1
        fi
        sleep 0.1
    done
    if [ -z "$url" ]; then
        cat "$log" >&2
        echo "40-dashboard-browser: the dashboard (--demo $n) did not start" >&2
        return 1
    fi
    demo_url=$url
}

mkdir -p "$root/artifacts"
chromium=$(command -v chromium)

start_demo 12
echo "dashboard (12 servers) at $demo_url"
DASHBOARD_URL="$demo_url" ARTIFACTS="$root/artifacts" CHROMIUM="$chromium" \
    node examples/dashboard/e2e/dashboard.test.mjs

DASHBOARD_URL="$demo_url" ARTIFACTS="$root/artifacts" CHROMIUM="$chromium" \
    node examples/dashboard/e2e/overview.test.mjs

# The page at fleet scale: 10 000 servers of 16 channels, polled every 10 s
# by a release build (a debug build cannot poll that many on two shared
# cores), 0.4 % of them with stalled channels for the batch by filter. The
# simulator closes connections idle for 3 s (shorter than the 10 s between
# sweeps): the dashboard's 10 000 kept connections and the simulator's
# 10 000 listeners would otherwise fill this machine's 20 000 open files,
# leaving the simulator to close connections over its descriptor budget
# after each answer.
scale=${IPVTL_SCALE_SERVERS:-10000}
cargo build --release -p ipvtl-dashboard -p ipvtl-sim
./target/release/ipvtl-sim --count "$scale" --channels 16 --control 127.0.0.1:0 --fault stalled:0.004 --idle-timeout-ms 3000 \
    --write "$work/scale-servers.json" >"$work/sim.log" 2>&1 &
pids+=("$!")
control=""
for _ in $(seq 1 600); do
    control=$(sed -n 's|^control \(http://[^ ]*\)$|\1|p' "$work/sim.log" 2>/dev/null || true)
    [ -n "$control" ] && [ -s "$work/scale-servers.json" ] && break
    sleep 0.1
done
if [ -z "$control" ]; then
    cat "$work/sim.log" >&2
    echo "40-dashboard-browser: the simulator did not start" >&2
    exit 1
fi
log="$work/out-scale.log"
./target/release/ipvtl-dashboard --servers "$work/scale-servers.json" --poll-interval 10 --listen 127.0.0.1:0 \
    --store "sqlite:$work/scale.db" --audit-log "$work/audit-scale.jsonl" >"$log" 2>&1 &
pids+=("$!")
demo_url=""
for _ in $(seq 1 300); do
    demo_url=$(sed -n 's|^serving on \(http://[^ ]*\)$|\1|p' "$log" 2>/dev/null || true)
    [ -n "$demo_url" ] && break
    sleep 0.1
done
if [ -z "$demo_url" ]; then
    cat "$log" >&2
    echo "40-dashboard-browser: the dashboard (--servers, $scale) did not start" >&2
    exit 1
fi
# The first sweep over: nearly every server online.
online=0
for _ in $(seq 1 120); do
    online=$(curl -s "${demo_url}api/overview" | grep -o '"online"' | wc -l || true)
    [ "$online" -ge $((scale * 99 / 100)) ] && break
    sleep 1
done
if [ "$online" -lt $((scale * 99 / 100)) ]; then
    curl -s -i "${demo_url}api/overview" | head -c 300 >&2
    echo "40-dashboard-browser: after 2 minutes $online of $scale servers are online in /api/overview" >&2
    exit 1
fi
echo "dashboard ($scale servers, $online online) at $demo_url"
DASHBOARD_URL="$demo_url" ARTIFACTS="$root/artifacts" CHROMIUM="$chromium" SERVERS="$scale" SIM_CONTROL="$control" POLL_S=10 \
    node examples/dashboard/e2e/scale.test.mjs
