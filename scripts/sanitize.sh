#!/usr/bin/env bash
# Builds the provider with AddressSanitizer + UndefinedBehaviorSanitizer and runs the op,
# partitioning, provider and reliability tests against it (the Python package is the one in
# .venv; PHOENIX_NPU_LIBRARY points it at the sanitized library). Any ASan or UBSan report
# fails the run. Needs scripts/setup.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/sanitize
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPHOENIX_SANITIZE=ON >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
lib="$(pwd)/$build/libphoenix_npu_ep.so"
asan=$(g++ -print-file-name=libasan.so)
ubsan=$(g++ -print-file-name=libubsan.so)
echo "[sanitize] running tests against $lib"
# Python itself is not instrumented: leaks in the interpreter are not ours, so leak checking
# is off; every memory error and every UB report in the provider aborts the test process.
LD_PRELOAD="$asan $ubsan" \
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
PHOENIX_SANITIZED=1 PHOENIX_NPU_LIBRARY="$lib" PHOENIX_FUZZ_GRAPHS=${PHOENIX_FUZZ_GRAPHS:-100} \
  "${PYTHON:-.venv/bin/python}" -m pytest -q -p no:cacheprovider \
  tests/test_ops.py tests/test_precision.py tests/test_partitioning.py tests/test_provider.py tests/test_reliability.py \
  tests/test_fuzz.py tests/test_manifest.py "$@"
