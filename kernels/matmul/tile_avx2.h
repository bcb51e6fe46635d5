// The register tile of the AVX2 MatMul kernels (BF16 MatMul, fused attention): 6 rows x 16
// columns of FP32 accumulators, acc = acc + a * b per step (vmulps then vaddps, never fused: the
// including file has fp-contract=off), k in order. For the *_avx2.cc files only.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace phoenix::kernels::avx2 {
namespace {

constexpr int kTileRows = 6, kTileCols = 16;

// acc [6][16] (row stride 16; read first unless `first`, then 0) += sum over k < kc of
// a[k * a_step + r] * b[k * 16 + j]: a holds the 6 rows' k-th values a_step apart (a packed
// panel: a_step = 6), b a packed panel of 16 columns. The result is stored back to acc.
__attribute__((noinline)) void TileAccumulate(const float* a, int64_t a_step, const float* b, int64_t kc, bool first,
                                              float* acc_io) {
  __m256 acc[kTileRows][2];
  for (int r = 0; r < kTileRows; ++r)
    for (int v = 0; v < 2; ++v) acc[r][v] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(acc_io + r * kTileCols + 8 * v);
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b + k * kTileCols), b1 = _mm256_loadu_ps(b + k * kTileCols + 8);
    const float* ak = a + k * a_step;
#pragma GCC unroll 6
    for (int r = 0; r < kTileRows; ++r) {
      const __m256 av = _mm256_broadcast_ss(ak + r);
      acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_mul_ps(av, b0));
      acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_mul_ps(av, b1));
    }
  }
  for (int r = 0; r < kTileRows; ++r)
    for (int v = 0; v < 2; ++v) _mm256_storeu_ps(acc_io + r * kTileCols + 8 * v, acc[r][v]);
}

}  // namespace
}  // namespace phoenix::kernels::avx2
