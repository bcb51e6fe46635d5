// MatMul tile kernels for one AIE2 compute tile: C = epilogue(ALPHA * A @ B + bias) + residual.
// NOT YET RUN ON HARDWARE (needs Peano; written against the AIE API's aie::mmul).
//
// Numerics (kernels/matmul/emulated.cc): BF16 A and B, FP32 accumulation in an L1 accumulator
// that lives across all K/k steps (never rounded in between), epilogue in FP32 (ALPHA, bias,
// GELU via Gelu16 = the bf16.h erf/tanh), residual added in FP32 after the epilogue, ONE BF16
// rounding (nearest even). The 4x8x4 BF16 mmul sums 8 products at a time in hardware: the K
// order differs from the emulated kernel's sequential sum (same FP32 accuracy class).
//
// Layouts (produced by the DMA access patterns of matmul.py, as in mlir-aie's whole_array):
//   A tile m x k in 4x8 blocks (row-major blocks, row-major inside), B tile k x n in 8x4 blocks,
//   accumulator and C tile m x n in 4x4 blocks. A residual tile arrives as the first m rows of a
//   B-sized object, so it is in the 8x4 block layout of B.
#include <aie_api/aie.hpp>

#include "phoenix_aie_math.h"

#ifndef DIM_M
#define DIM_M 64
#endif
#ifndef DIM_K
#define DIM_K 32
#endif
#ifndef DIM_N
#define DIM_N 64
#endif
#ifndef ALPHA
#define ALPHA 1.0f
#endif
#ifndef GELU_MODE
#define GELU_MODE -1  // -1 none, 0 erf, 1 tanh
#endif

using namespace phoenix_aie;
using MMUL = aie::mmul<4, 8, 4, bfloat16, bfloat16, accfloat>;
static_assert(DIM_M % 8 == 0 && DIM_K % 16 == 0 && DIM_N % 8 == 0, "tile must fit the 2x2-unrolled 4x8x4 mmul");

namespace {
constexpr int MB = DIM_M / 4, KB = DIM_K / 8, NB = DIM_N / 4;

inline int CIndex(int i, int j) { return ((i / 4) * NB + j / 4) * 16 + (i % 4) * 4 + j % 4; }
inline int BIndex(int i, int j) { return ((i / 8) * NB + j / 4) * 32 + (i % 8) * 4 + j % 4; }
}  // namespace

extern "C" {

void phoenix_mm_zero(float* __restrict acc) {
  for (int i = 0; i < DIM_M * DIM_N; i += 16) aie::store_v(acc + i, aie::zeros<float, 16>());
}

// acc += A @ B for one k-step; 2x2 output blocks per iteration keep 4 accumulators busy.
void phoenix_mm_mac(const bfloat16* __restrict a, const bfloat16* __restrict b, float* __restrict acc) {
  for (int z = 0; z < MB; z += 2) {
    for (int j = 0; j < NB; j += 2) {
      float* c00 = acc + (z * NB + j) * MMUL::size_C;
      float* c01 = c00 + MMUL::size_C;
      float* c10 = acc + ((z + 1) * NB + j) * MMUL::size_C;
      float* c11 = c10 + MMUL::size_C;
      MMUL C00(aie::load_v<MMUL::size_C>(c00)), C01(aie::load_v<MMUL::size_C>(c01));
      MMUL C10(aie::load_v<MMUL::size_C>(c10)), C11(aie::load_v<MMUL::size_C>(c11));
      const bfloat16* pa0 = a + (z * KB) * MMUL::size_A;
      const bfloat16* pa1 = a + ((z + 1) * KB) * MMUL::size_A;
      const bfloat16* pb0 = b + j * MMUL::size_B;
      const bfloat16* pb1 = b + (j + 1) * MMUL::size_B;
      for (int i = 0; i < KB; ++i) {
        const auto A0 = aie::load_v<MMUL::size_A>(pa0), A1 = aie::load_v<MMUL::size_A>(pa1);
        const auto B0 = aie::load_v<MMUL::size_B>(pb0), B1 = aie::load_v<MMUL::size_B>(pb1);
        pa0 += MMUL::size_A;
        pa1 += MMUL::size_A;
        pb0 += MMUL::size_B * NB;
        pb1 += MMUL::size_B * NB;
        C00.mac(A0, B0);
        C01.mac(A0, B1);
        C10.mac(A1, B0);
        C11.mac(A1, B1);
      }
      aie::store_v(c00, C00.template to_vector<float>());
      aie::store_v(c01, C01.template to_vector<float>());
      aie::store_v(c10, C10.template to_vector<float>());
      aie::store_v(c11, C11.template to_vector<float>());
    }
  }
}

// Keeps the n FP32 bias values of this column block: the first 2n BF16 slots of a B-layout
// object (the shim sends them as n floats; the B access pattern permutes whole 4-byte pairs).
void phoenix_mm_keep_bias(const bfloat16* __restrict obj, float* __restrict bias) {
  for (int t = 0; t < DIM_N; ++t) {
    const int e = 2 * t;  // bf16 slot of float t in the row-major k x n object
    const bfloat16* p = obj + BIndex(e / DIM_N, e % DIM_N);
    float f;
    __builtin_memcpy(&f, p, sizeof f);
    bias[t] = f;
  }
}

// Keeps this core's residual tile: the first m rows (m*n values) of a B-layout object.
void phoenix_mm_keep_residual(const bfloat16* __restrict obj, bfloat16* __restrict res) {
  for (int i = 0; i < DIM_M * DIM_N; i += 16) aie::store_v(res + i, aie::load_v<16>(obj + i));
}

// c = bf16(epilogue(ALPHA * acc + bias) [+ residual]); bias may be null, residual may be null.
void phoenix_mm_epilogue(const float* __restrict acc, const float* __restrict bias,
                         const bfloat16* __restrict res, bfloat16* __restrict c, int32_t has_bias,
                         int32_t has_residual) {
  aie::set_rounding(aie::rounding_mode::conv_even);
  alignas(32) float bias_blk[16];
  alignas(32) bfloat16 res_blk[16];
  for (int bi = 0; bi < MB; ++bi) {
    for (int bj = 0; bj < NB; ++bj) {
      const int base = (bi * NB + bj) * 16;  // one 4x4 block = 16 lanes
      v16f v = MulS(aie::load_v<16>(acc + base), ALPHA);
      if (has_bias) {
        for (int t = 0; t < 16; ++t) bias_blk[t] = bias[bj * 4 + t % 4];
        v = Add(v, aie::load_v<16>(bias_blk));
      }
#if GELU_MODE >= 0
      v = Gelu16(v, GELU_MODE);
#endif
      if (has_residual) {
        for (int t = 0; t < 16; ++t) res_blk[t] = res[BIndex(bi * 4 + t / 4, bj * 4 + t % 4)];
        v = Add(v, Load16(res_blk));
      }
      aie::store_v(c + base, ToBf16(v));
    }
  }
  (void)CIndex;
}

}  // extern "C"
