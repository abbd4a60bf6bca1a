#!/usr/bin/env bash
# ipvtl's own alerts against a real Alertmanager (Debian's
# `prometheus-alertmanager` package, installed when missing if run as root),
# run on a free loopback port with its own minimal config and storage in a
# temporary directory (clustering off; never the package's service).
# `ipvtl-dashboard --demo 12` runs with an alerts file whose receiver is that
# Alertmanager, `for` shortened to 2s and a re-send every 3s;
# tests/alertmanager.py then asserts over Alertmanager's API
# (GET /api/v2/alerts) that the alerts arrive with the right labels
# (IpvtlServerDown for sim-0003, down in the demo; IpvtlChannelStalled for
# sim-0006; none for the healthy servers), that a fault that ends (sim-0004
# flaps every 20s) resolves its alert there, that maintenance silences on the
# dashboard's side, and that the test alert is accepted. Then the page's
# alerts panel in headless Chromium (e2e/alerts.test.mjs), when the browser
# step's tools are installed.
# Both processes are stopped and the directory removed at the end, also on
# failure (then their logs are printed).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

apt_who=48-alertmanager
svc_who=48-alertmanager
# shellcheck source=scripts/lib/apt.sh
. scripts/lib/apt.sh
if ! command -v prometheus-alertmanager >/dev/null; then
    apt_install --no-install-recommends prometheus-alertmanager
fi
echo "48-alertmanager: $(prometheus-alertmanager --version 2>&1 | head -n 1)"

# Build before anything starts.
cargo build -p ipvtl-dashboard --quiet
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh
target=$(target_dir)

svc_init ipvtl-am
dash_port=$(free_port)
am_port=$(free_port)

cat >"$work/alertmanager.yml" <<EOF
route:
  receiver: blackhole
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: blackhole
EOF
cat >"$work/alerts.toml" <<EOF
[rules.server_down]
for = "2s"
[rules.channel_stalled]
for = "2s"
[rules.cpu_high]
enabled = false

[[receivers]]
name = "am"
type = "alertmanager"
url = "http://127.0.0.1:$am_port"

[delivery]
resend = "3s"
backoff = "500ms"
backoff_max = "2s"
external_url = "http://127.0.0.1:$dash_port"
EOF

prometheus-alertmanager --config.file="$work/alertmanager.yml" --storage.path="$work/am" \
    --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= --log.level=warn >"$work/alertmanager.log" 2>&1 &
svc_started alertmanager $!
(cd "$work" && exec "$target/debug/ipvtl-dashboard" --demo 12 --listen "127.0.0.1:$dash_port" --poll-interval 1 \
    --poll-timeout 1 --audit-log "$work/audit.jsonl" --alerts "$work/alerts.toml" >"$work/dashboard.log" 2>&1) &
svc_started dashboard $!
echo "48-alertmanager: dashboard on 127.0.0.1:$dash_port, Alertmanager on 127.0.0.1:$am_port ($work)"

timeout 150 python3 "$root/tests/alertmanager.py" "http://127.0.0.1:$am_port" "http://127.0.0.1:$dash_port"

# The page's alerts (header count, panel, silence button, zh) in headless
# Chromium against the same dashboard, with the browser step's tools
# (scripts/test.d/40-dashboard-browser.sh installs them; ./scripts/test runs
# it first). Without them this step fails rather than skip the check.
e2e=$root/examples/dashboard/e2e
if command -v chromium >/dev/null && command -v node >/dev/null && [ -d "$e2e/node_modules/playwright-core" ]; then
    (cd "$e2e" && DASHBOARD_URL="http://127.0.0.1:$dash_port" ARTIFACTS="$root/artifacts" timeout 120 node alerts.test.mjs)
else
    echo "48-alertmanager: no chromium, node or e2e/node_modules for the page's alerts panel: run scripts/test.d/40-dashboard-browser.sh first" >&2
    exit 1
fi
