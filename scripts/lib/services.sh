# Sourced by the test.d steps that run real services beside a dashboard
# (Prometheus, Alertmanager): a work directory, free loopback ports, the
# cargo target directory, and services stopped at the end, also on failure.
#
#   svc_who=47-prometheus            # the step's name, for messages
#   . scripts/lib/services.sh
#   svc_init ipvtl-prom              # $work: a fresh temporary directory
#   port=$(free_port)
#   some-daemon ... >"$work/daemon.log" 2>&1 &
#   svc_started daemon $!            # stopped at exit; its log shown on failure

svc_pids=()
svc_names=()

# The cargo target directory (where the built dashboard is).
target_dir() {
    cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

# A TCP port free on 127.0.0.1 right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Makes $work (under /tmp, named after $1) and stops everything at exit.
svc_init() {
    work=$(mktemp -d "/tmp/$1.XXXXXX")
    trap svc_stop EXIT
}

# Records a started service: its name (its log is "$work/NAME.log") and pid.
svc_started() {
    svc_names+=("$1")
    svc_pids+=("$2")
}

# Stops every service (TERM, then KILL after 10 s), prints their logs' tails
# when the step failed, and removes $work.
svc_stop() {
    local rc=$? pid name
    for pid in "${svc_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${svc_pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$rc" != 0 ]; then
        for name in "${svc_names[@]}"; do
            if [ -s "$work/$name.log" ]; then
                echo "${svc_who:-test}: the $name's log (tail):" >&2
                tail -n 30 "$work/$name.log" >&2 || true
            fi
        done
    fi
    rm -rf "$work"
}
