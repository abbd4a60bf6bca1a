#!/usr/bin/env bash
# The files a Prometheus user drops in (examples/dashboard/deploy/) against
# the real tools, from Debian's `prometheus` package (it ships `prometheus`
# and `promtool`; installed when missing if run as root):
# - `promtool check config` on the example prometheus.yml, `promtool check
#   rules` and `promtool test rules` (ipvtl-rules.test.yml) on the rules;
# - a real Prometheus on a free loopback port (its own config, storage and
#   log in a temporary directory; never the package's service) scraping
#   `ipvtl-dashboard --demo 12` every second, plus a closed port as a second
#   `ipvtl` target, with a copy of the shipped rules whose `for:` durations
#   are all rewritten to 5s (the only difference, checked) so alerts fire in
#   seconds; tests/prometheus_rules.py then asserts over the HTTP API that
#   the alerts fire for the faulted servers and never for the healthy ones,
#   that maintenance silences, that the recording rules have the values the
#   fleet implies, and that the Grafana dashboard is well formed and every
#   PromQL expression in it answers with data.
# Both processes are stopped and the directory removed at the end, also on
# failure (then their logs are printed).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
deploy=$root/examples/dashboard/deploy

apt_who=47-prometheus
svc_who=47-prometheus
# shellcheck source=scripts/lib/apt.sh
. scripts/lib/apt.sh
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    apt_install --no-install-recommends prometheus
fi
echo "47-prometheus: $(prometheus --version 2>&1 | head -n 1)"

# Static checks of the shipped files.
promtool check config "$deploy/prometheus/prometheus.yml"
promtool check rules "$deploy/prometheus/ipvtl-rules.yml"
(cd "$deploy/prometheus" && promtool test rules ipvtl-rules.test.yml)

# Build before anything starts.
cargo build -p ipvtl-dashboard --quiet
# shellcheck source=scripts/lib/services.sh
. scripts/lib/services.sh
target=$(target_dir)

svc_init ipvtl-prom
dash_port=$(free_port)
prom_port=$(free_port)
dead_port=$(free_port) # nothing listens there: the "dashboard down" target

# The shipped rules with every `for:` shortened to 5s, and nothing else changed.
sed -E 's/^([[:space:]]*for:[[:space:]]*)[0-9]+[smh]$/\15s/' "$deploy/prometheus/ipvtl-rules.yml" >"$work/ipvtl-rules.yml"
if ! diff <(grep -v '^[[:space:]]*for:' "$deploy/prometheus/ipvtl-rules.yml") <(grep -v '^[[:space:]]*for:' "$work/ipvtl-rules.yml") >/dev/null ||
    [ "$(grep -c '^[[:space:]]*for:' "$deploy/prometheus/ipvtl-rules.yml")" != "$(grep -c '^[[:space:]]*for: 5s$' "$work/ipvtl-rules.yml")" ]; then
    echo "47-prometheus: rewriting the for: durations changed more than them" >&2
    exit 1
fi
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $work/ipvtl-rules.yml
scrape_configs:
  - job_name: ipvtl
    static_configs:
      - targets: ["127.0.0.1:$dash_port", "127.0.0.1:$dead_port"]
EOF
promtool check config "$work/prometheus.yml" >/dev/null

(cd "$work" && exec "$target/debug/ipvtl-dashboard" --demo 12 --listen "127.0.0.1:$dash_port" --poll-interval 1 \
    --audit-log "$work/audit.jsonl" >"$work/dashboard.log" 2>&1) &
svc_started dashboard $!
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$work/prometheus.log" 2>&1 &
svc_started prometheus $!
echo "47-prometheus: dashboard on 127.0.0.1:$dash_port, Prometheus on 127.0.0.1:$prom_port ($work)"

timeout 240 python3 tests/prometheus_rules.py "http://127.0.0.1:$prom_port" "http://127.0.0.1:$dash_port" \
    "127.0.0.1:$dead_port" "$deploy/grafana/ipvtl-dashboard.json"
