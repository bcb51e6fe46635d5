// This CPU's multiply-accumulate peak, measured: the throughput of the dot-product instructions
// the emulated kernels are built on, one thread, so that benchmarks can print each kernel
// family's share of the peak (`phoenix-npu bench`). Exported to Python as the C function
// PhoenixNPU_MeasurePeak (JSON, PeakJson below).
#pragma once

#include <string>

namespace phoenix {

// Per core (one thread), in GFLOP/s for float products and GOP/s for integer ones, counting a
// multiply-add as 2. 0 when this CPU (or its OS) lacks the instruction.
struct PeakPerCore {
  double fp32_fma = 0;    // vfmadd231ps ymm (AVX2 + FMA): the AVX2 BF16 kernels' tile where every product is exact
  double fp32_muladd = 0; // vmulps + vaddps ymm, one each: their tile where a product is not exact in FP32
  double bf16_dot = 0;    // vdpbf16ps zmm (AVX512_BF16): the AVX-512 BF16 kernels
  double int8_dot = 0;    // vpdpbusd zmm (AVX512_VNNI), u8 x s8 -> s32: the AVX-512 VNNI INT8 kernels
  double int8_dot_ymm = 0; // {vex} vpdpbusd ymm (AVX-VNNI): the AVX-VNNI INT8 kernels
  double int16_madd = 0;  // vpmaddwd + vpaddd ymm (AVX2): s16 x s16 pairs -> s32, the AVX2 INT8 kernels
};

// Measures each instruction for about `seconds` (all of them: about 5 x seconds).
PeakPerCore MeasurePeakPerCore(double seconds);

// The peak as JSON, measured once per process (about 0.25 s) and cached; the library exports it
// as PhoenixNPU_MeasurePeak (provider/ep_lib.cc):
//   {"kernel_isa": "avx2", "bf16_kernels": "fp32_fma", "int8_kernels": "int16_madd",
//    "per_core": {"fp32_fma": 101.6, "fp32_muladd": 95.0, "bf16_dot": 0.0, "int8_dot": 0.0, "int8_dot_ymm": 0.0,
//                 "int16_madd": 160.2}}
// in GFLOP/s or GOP/s per core (one thread, CPU time; 0 = instruction absent). "bf16_kernels" /
// "int8_kernels" name the entry that is the peak of the instruction the emulated device's BF16 /
// INT8 kernels run on this CPU (null: the portable scalar kernels).
std::string PeakJson();

}  // namespace phoenix
