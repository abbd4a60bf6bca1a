#!/usr/bin/env bash
# uniffi bindings (bindings/uniffi): builds the ipvtl-ffi cdylib, generates
# Kotlin, Python and Ruby bindings in library mode with the pinned
# uniffi-bindgen, then runs a real script per language against the simulator
# on loopback: Kotlin on the JVM (Maven: Kotlin 2.x, kotlinx-coroutines, JNA
# from Maven Central), Python (the generated ctypes module) and Ruby
# (Debian's ruby + ruby-ffi). Installs what is missing (Debian packages, as
# root). Runs every language, then fails if any failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

need_apt=()
command -v mvn >/dev/null && command -v javac >/dev/null || need_apt+=(maven default-jdk-headless)
command -v ruby >/dev/null && ruby -e 'require "ffi"; require "minitest"' 2>/dev/null || need_apt+=(ruby ruby-ffi)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing ${need_apt[*]} (Debian packages)"
    if [ "$(id -u)" != 0 ]; then
        echo "error: run as root or install: ${need_apt[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

cargo build -p ipvtl-ffi -p ipvtl-uniffi-bindgen
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
lib="$target/debug/libipvtl_ffi.so"
[ -f "$lib" ] || lib="$target/debug/libipvtl_ffi.dylib"
out="$target/uniffi"
rm -rf "$out"
for language in kotlin python ruby; do
    "$target/debug/uniffi-bindgen" generate --no-format --library "$lib" --language "$language" \
        --out-dir "$out/$language" >/dev/null
done
# Python and Ruby load the library from beside the generated module / the
# loader path; Kotlin (JNA) from jna.library.path.
cp "$lib" "$out/python/"
cp "$lib" "$out/ruby/"

failed=()

echo "--> Kotlin (JVM, JUnit via Maven)"
if ! (cd bindings/uniffi/tests/kotlin &&
    mvn -B --no-transfer-progress test \
        -Dgenerated.dir="$out/kotlin" -Dnative.dir="$(dirname "$lib")"); then
    failed+=(kotlin)
fi

echo "--> Python (generated ipvtl_ffi module)"
if ! python3 bindings/uniffi/tests/python/test_uniffi.py "$out/python"; then
    failed+=(python)
fi

echo "--> Ruby (ruby-ffi)"
if ! IPVTL_FFI_RUBY_DIR="$out/ruby" LD_LIBRARY_PATH="$out/ruby${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    ruby bindings/uniffi/tests/ruby/test_uniffi.rb; then
    failed+=(ruby)
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "uniffi binding tests failed: ${failed[*]}" >&2
    exit 1
fi
echo "uniffi binding tests passed: kotlin python ruby"
