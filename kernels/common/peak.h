// This CPU's multiply-accumulate peak, measured: the throughput of the dot-product instructions
// the emulated kernels are built on, one thread, so that benchmarks can print each kernel
// family's share of the peak (`phoenix-npu bench`). Exported to Python as the C function
// PhoenixNPU_MeasurePeak (JSON; see peak.cc).
#pragma once

namespace phoenix {

// Per core (one thread), in GFLOP/s for float products and GOP/s for integer ones, counting a
// multiply-add as 2. 0 when this CPU (or its OS) lacks the instruction.
struct PeakPerCore {
  double fp32_fma = 0;    // vfmadd231ps ymm (AVX2 + FMA)
  double fp32_muladd = 0; // vmulps + vaddps ymm, one each: the AVX2 BF16 kernels' step (bit-exact, no FMA)
  double bf16_dot = 0;    // vdpbf16ps zmm (AVX512_BF16): the AVX-512 BF16 kernels
  double int8_dot = 0;    // vpdpbusd zmm (AVX512_VNNI), u8 x s8 -> s32
  double int16_madd = 0;  // vpmaddwd + vpaddd ymm (AVX2): s16 x s16 pairs -> s32, the AVX2 INT8 kernels
};

// Measures each instruction for about `seconds` (all of them: about 5 x seconds).
PeakPerCore MeasurePeakPerCore(double seconds);

}  // namespace phoenix
