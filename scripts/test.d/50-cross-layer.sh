#!/usr/bin/env bash
# One simulated fleet through every layer that speaks the wire vocabulary
# (SPEC §12): the Python module's to_dict() and event dicts, the dashboard
# binary's JSON and SSE, and the uniffi records (generated Python module).
# Same names everywhere, same values where the fleet holds still
# (tests/cross_layer.py). Uses what the earlier steps built: the wheel in
# .venv-py (20-python), the generated uniffi module (30-uniffi) and the
# dashboard binary (40-dashboard-browser); builds the last two if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
py=$root/.venv-py/bin/python
if ! [ -x "$py" ] || ! "$py" -c 'import ipvtl' 2>/dev/null; then
    echo "50-cross-layer: the ipvtl wheel is not installed in .venv-py; run scripts/test.d/20-python.sh first" >&2
    exit 1
fi
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
[ -f "$target/uniffi/python/ipvtl_ffi.py" ] || bash scripts/test.d/30-uniffi.sh
cargo build -p ipvtl-dashboard
timeout 300 "$py" tests/cross_layer.py "$target/debug/ipvtl-dashboard" "$target/uniffi/python"
