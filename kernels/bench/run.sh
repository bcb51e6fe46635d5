#!/bin/sh
# Builds kernel_bench (CMake target, with the library's compile flags: cmake/PhoenixTests.cmake)
# and runs it; then, unless --no-ort is the first argument, times the same MatMul shapes in FP32
# on ONNX Runtime's CPU EP (MLAS) in the same run, for the ratio. Extra arguments go to
# kernel_bench (--threads N, --only NAME). Correctness: ctest (see README.md, "Tests").
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BENCH_BUILD:-$root/build/kernel-bench}
ort=1
if [ "$1" = "--no-ort" ]; then ort=0; shift; fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPHOENIX_BUILD_TESTS=ON >/dev/null
cmake --build "$build" --target kernel_bench -j2 >/dev/null
"$build/kernel_bench" "$@"
if [ $ort = 1 ]; then
  py="$root/.venv/bin/python"
  [ -x "$py" ] || py=python3
  echo
  echo "ONNX Runtime CPU EP, FP32 MatMul (MLAS), same shapes:"
  "$py" "$here/ort_baseline.py" 2 | awk '{printf "  %-34s %7.1f GFLOP/s  %7.3f ms\n", $1, $2, $3}'
fi
