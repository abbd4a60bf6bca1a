#!/usr/bin/env bash
# The dashboard page in real headless Chromium: starts `ipvtl-dashboard
# --demo 12`, loads the page, waits for live data, restarts a channel
# through the UI and watches it go stopping -> idle -> running, checks a
# phone-width layout, and saves screenshots to artifacts/.
# Installs Debian's chromium (and node, if missing) when run as root.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "40-dashboard-browser: need root to install $* (apt-get)" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
if ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium chromium-driver
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi

cargo build -p ipvtl-dashboard
(cd examples/dashboard/e2e && npm ci --no-audit --no-fund --loglevel=error)

work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

./target/debug/ipvtl-dashboard --demo 12 --listen 127.0.0.1:0 --audit-log "$work/audit.jsonl" >"$work/out.log" 2>&1 &
pid=$!
url=""
for _ in $(seq 1 300); do
    url=$(sed -n 's|^serving on \(http://[^ ]*\)$|\1|p' "$work/out.log")
    [ -n "$url" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        cat "$work/out.log" >&2
        echo "40-dashboard-browser: the dashboard exited" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$url" ]; then
    cat "$work/out.log" >&2
    echo "40-dashboard-browser: the dashboard did not start" >&2
    exit 1
fi
echo "dashboard at $url"
mkdir -p "$root/artifacts"
DASHBOARD_URL="$url" ARTIFACTS="$root/artifacts" CHROMIUM="$(command -v chromium)" \
    node examples/dashboard/e2e/dashboard.test.mjs
