#!/usr/bin/env bash
# The Python module `ipvtl` (bindings/python): builds the abi3 wheel with
# maturin, installs it into a venv, runs pytest, checks the stubs against the
# module (mypy stubtest) and type-checks tests and examples, runs the
# at-exit check 100 times, installs the wheel into a second fresh venv, and
# runs the examples against the simulated fleet. Run by ./scripts/test.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
py=${PYTHON:-python3}
venv=$root/.venv-py
fresh=$root/.venv-py-fresh
# A target dir of its own: maturin's release build does not fight the
# workspace's debug builds for the lock.
export CARGO_TARGET_DIR=$root/target/py
wheels=$CARGO_TARGET_DIR/wheels
say() { printf -- '--> %s\n' "$*"; }

if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    "$py" -m venv "$venv"
fi
say "tools: maturin, pytest, mypy (pinned)"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "maturin==1.16.0" "pytest==9.2.0" "mypy==2.4.1"

say "maturin build --release (abi3 wheel, curl linked statically)"
rm -rf "$wheels"
"$venv/bin/maturin" build --release --manifest-path bindings/python/Cargo.toml --out "$wheels" \
    --interpreter "$venv/bin/python"
wheel=$(ls "$wheels"/ipvtl-*.whl)
say "built $(basename "$wheel")"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"

say "the wheel is self-contained: its extension needs only libc, libgcc_s and zlib"
so=$(cd / && "$venv/bin/python" -c 'import ipvtl._ipvtl as m; print(m.__file__)')
case "$so" in "$venv"/*) ;; *) echo "ipvtl was imported from $so, not from the installed wheel" >&2; exit 1 ;; esac
needed=$(ldd "$so" | awk '{print $1}')
echo "$needed" | sed 's/^/    /'
if echo "$needed" | grep -Eq 'libcurl|libssl|libcrypto|libnghttp|libpython'; then
    echo "the extension links a library the wheel does not carry" >&2
    exit 1
fi

say "pytest"
(cd bindings/python && "$venv/bin/python" -m pytest -q -p no:cacheprovider tests)

say "stubs: mypy stubtest against the module, mypy --strict over tests and examples"
(cd / && "$venv/bin/python" -m mypy.stubtest ipvtl._ipvtl)
(cd bindings/python && "$venv/bin/python" -m mypy --strict --no-incremental --cache-dir=/dev/null tests examples)

say "interpreter exit with asyncio work in flight: 100 runs"
for i in $(seq 1 100); do
    mode=keep-loop
    [ $((i % 2)) -eq 0 ] && mode=close-loop
    if ! timeout 60 "$venv/bin/python" bindings/python/tests/exit_check.py "$mode" >/dev/null 2>"$CARGO_TARGET_DIR/exit_check.err"; then
        echo "run $i ($mode) failed:" >&2
        cat "$CARGO_TARGET_DIR/exit_check.err" >&2
        exit 1
    fi
done
echo "    100 runs, 100 clean exits"

say "the asyncio suite (tests/test_async.py) in 100 fresh interpreters, two at a time"
runs=$CARGO_TARGET_DIR/async-runs
rm -rf "$runs" && mkdir -p "$runs"
# Each run is its own process, so each ends with whatever the suite left
# behind (cancelled waits, closed loops) and must exit cleanly: pytest's
# exit status 0 and no signal. A failing run's output is kept and shown.
seq 1 100 | xargs -P 2 -I{} sh -c '
    cd bindings/python && timeout 300 "$1" -m pytest -q -p no:cacheprovider tests/test_async.py \
        >"$2/run-{}.log" 2>&1 && rm "$2/run-{}.log" || { echo "async suite run {} failed (exit $?)"; exit 1; }
' sh "$venv/bin/python" "$runs" || {
    for f in "$runs"/run-*.log; do echo "--- $f" >&2; tail -40 "$f" >&2; done
    exit 1
}
echo "    100 runs, 100 passed with clean exits"

say "the wheel in a fresh venv, with no index: installs and works"
rm -rf "$fresh"
"$py" -m venv "$fresh"
"$fresh/bin/python" -m pip install -q --disable-pip-version-check --no-index --no-deps "$wheel"
(cd / && "$fresh/bin/python" - <<'PY'
import ipvtl, ipvtl.testing
with ipvtl.testing.SimFleet(3) as fleet, ipvtl.Cluster(fleet.servers, background=False) as cluster:
    assert cluster.poll().counts()["online"] == 3
print("    ipvtl", ipvtl.__version__, "from", ipvtl.__file__)
PY
)
rm -rf "$fresh"

say "examples against the simulated fleet"
for ex in fleet_report restart_stalled watch_events; do
    echo "    $ex.py"
    timeout 120 "$venv/bin/python" "bindings/python/examples/$ex.py" >"$CARGO_TARGET_DIR/$ex.out" 2>&1 || {
        cat "$CARGO_TARGET_DIR/$ex.out" >&2
        exit 1
    }
done
say "python: all checks passed"
