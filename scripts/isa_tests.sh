#!/usr/bin/env bash
# Every kernel ISA path this CPU can execute, each tested on its own (issue 22). The main pytest
# run covers the best path (the default); this runs the provider-level subset (op parity,
# precision, QDQ, the short fuzz) again with PHOENIX_KERNEL_ISA forcing each lesser path. The C++
# tier (scripts/cpp_tests.sh) runs each kernel's tests on the best path and with the AVX2 path
# forced. A path the CPU cannot execute is reported as not covered: the library would fall back
# to a lesser one, so the run would only repeat that one.
# Usage: scripts/isa_tests.sh   (needs .venv from scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
VPY=.venv/bin/python
paths=(portable avx2 avx_vnni avx512_bf16 avx512_vnni)  # least to most capable; each a PHOENIX_KERNEL_ISA value

# What the library runs when a path is asked for: its own report (kernels/common/peak.cc).
isa_ran() {
  PHOENIX_KERNEL_ISA=$1 "$VPY" -c 'import phoenix_npu; print(phoenix_npu.measure_peak()["kernel_isa"])'
}

best=$(isa_ran auto)
covered=() missing=()
for isa in "${paths[@]}"; do
  ran=$(isa_ran "$isa")
  if [ "$ran" != "$isa" ]; then
    echo "[isa-tests] $isa: this CPU cannot execute it (the library runs $ran instead)"
    missing+=("$isa")
    continue
  fi
  covered+=("$isa")
  if [ "$isa" = "$best" ]; then
    echo "[isa-tests] $isa: the default path here, covered by the main pytest run and the C++ tier"
    continue
  fi
  if [ "$isa" = avx_vnni ] || { [ "$isa" = avx512_bf16 ] && [ "$best" = avx512_vnni ]; }; then
    # These differ from the next path up only in the INT8 MatMul's body: the QDQ tests reach it.
    echo "[isa-tests] === $isa: QDQ (its INT8 MatMul body) ==="
    PHOENIX_KERNEL_ISA=$isa "$VPY" -m pytest -q -p no:cacheprovider tests/test_qdq.py
    continue
  fi
  echo "[isa-tests] === $isa: op parity, precision, QDQ, short fuzz ==="
  PHOENIX_KERNEL_ISA=$isa PHOENIX_FUZZ_GRAPHS=${PHOENIX_FUZZ_GRAPHS:-120} \
    "$VPY" -m pytest -q -p no:cacheprovider tests/test_ops.py tests/test_precision.py tests/test_qdq.py tests/test_fuzz.py
done
echo "[isa-tests] CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "[isa-tests] kernel paths covered here: ${covered[*]:-none} (default: $best)"
echo "[isa-tests] not covered here: ${missing[*]:-none}$([ ${#missing[@]} -gt 0 ] && echo ' (needs a CPU of that class: QEMU's TCG, in Debian, executes AVX2 but not AVX-512, and Intel's SDE is not in the reachable registries)')"
