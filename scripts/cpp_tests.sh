#!/usr/bin/env bash
# The C++ test tier (CTest: cmake/PhoenixTests.cmake): builds the kernels and the tests with the
# project's compile flags and runs them; then the same under AddressSanitizer +
# UndefinedBehaviorSanitizer (-DPHOENIX_SANITIZE=ON). Any failure or sanitizer report fails.
# Usage: scripts/cpp_tests.sh [plain|sanitize|both]   (default both)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-both}
run() {  # run BUILD_DIR CMAKE_ARGS...
  local build=$1; shift
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPHOENIX_BUILD_TESTS=ON "$@" >/dev/null
  cmake --build "$build" -j2 >/dev/null
  (cd "$build" && ctest --output-on-failure -j2)
}
if [ "$mode" = plain ] || [ "$mode" = both ]; then
  echo "[cpp-tests] plain"
  run build/cpp-tests
fi
if [ "$mode" = sanitize ] || [ "$mode" = both ]; then
  echo "[cpp-tests] ASan + UBSan"
  ASAN_OPTIONS=abort_on_error=1:halt_on_error=1:detect_leaks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run build/cpp-tests-sanitize -DPHOENIX_SANITIZE=ON
fi
