#!/bin/sh
# Builds kernel_bench with g++ directly (same flags as CMakeLists.txt for the kernel sources:
# -O3 baseline x86-64, and the AVX-512 set for *_avx512.cc) and runs it; then, unless --no-ort
# is the first argument, times the same MatMul shapes in FP32 on ONNX Runtime's CPU EP (MLAS)
# in the same run, for the ratio. Extra arguments go to kernel_bench (--quick, --threads N,
# --no-perf, --no-test).
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${BENCH_OUT:-/tmp/phoenix_kernel_bench}
mkdir -p "$out"
ort=1
if [ "$1" = "--no-ort" ]; then ort=0; shift; fi
CXX=${CXX:-g++}
FLAGS="-std=c++17 -O3 -Wall -Wextra -Wno-unused-parameter -I$root/kernels"
AVX512="-mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mfma -mf16c"
AVX2="-mavx2 -mfma -mf16c"
objs=""
for src in "$root"/kernels/common/*.cc "$root"/kernels/*/emulated*.cc "$here/kernel_bench.cc"; do
  obj="$out/$(echo "$src" | sed "s|$root/||; s|/|_|g").o"
  extra=""
  case "$src" in
    *_avx512.cc) extra="$AVX512" ;;
    *_avx2.cc) extra="$AVX2" ;;
  esac
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find "$root/kernels" -name '*.h' -newer "$obj" | head -1)" ]; then
    rm -f "$obj"
    $CXX $FLAGS $extra -c "$src" -o "$obj" &
  fi
  objs="$objs $obj"
done
wait
for o in $objs; do [ -f "$o" ] || { echo "compile failed: $o" >&2; exit 1; }; done
$CXX -O3 -o "$out/kernel_bench" $objs -lpthread
"$out/kernel_bench" "$@"
if [ $ort = 1 ]; then
  py="$root/.venv/bin/python"
  [ -x "$py" ] || py=python3
  echo
  echo "ONNX Runtime CPU EP, FP32 MatMul (MLAS), same shapes:"
  "$py" "$here/ort_baseline.py" 2 | awk '{printf "  %-34s %7.1f GFLOP/s  %7.3f ms\n", $1, $2, $3}'
fi
