#!/usr/bin/env bash
# The dashboard page in real headless Chromium. Against `ipvtl-dashboard
# --demo 12`: loads the page, waits for live data, restarts a channel
# through the UI and watches it go stopping -> idle -> running, switches to
# zh, checks a phone-width layout. Against `--demo 2000`: every card renders,
# search narrows, a batch restart chosen in the page runs to its report.
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

# The page at 2 000 servers: every card renders, live updates flow, search
# and a batch selection work, and the figures are printed (not judged).
start_demo 2000
echo "dashboard (2 000 servers) at $demo_url"
DASHBOARD_URL="$demo_url" ARTIFACTS="$root/artifacts" CHROMIUM="$chromium" SERVERS=2000 \
    node examples/dashboard/e2e/large.test.mjs
