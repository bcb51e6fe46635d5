// The register tile of the AVX2 MatMul kernels (BF16 MatMul, fused attention): 6 rows x 16
// columns of FP32 accumulators, acc = acc + a * b per step, k in order. Two forms with the same
// bits whenever every product is exact (OperandRange / ProductsExact, common/kernel_isa.h): FMA,
// and vmulps then vaddps (the including file has fp-contract=off, so nothing else fuses).
// For the *_avx2.cc files only.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "common/kernel_isa.h"

namespace phoenix::kernels::avx2 {
namespace {

constexpr int kTileRows = 6, kTileCols = 16;

// acc [6][16] (row stride 16; read first unless `first`, then 0) += sum over k < kc of
// a[k * a_step + r] * b[k * b_step + j]: a holds the 6 rows' k-th values a_step apart (a packed
// panel: a_step = 6), b the 16 columns' k-th values (a packed panel: b_step = 16). The result is
// stored back to acc.
// kFused: one FMA per step; only when every product a * b is exact (then it equals the
// multiply-then-add form bit for bit).
template <bool kFused>
inline __m256 Step(__m256 acc, __m256 a, __m256 b) {
  if constexpr (kFused) return _mm256_fmadd_ps(a, b, acc);
  else return _mm256_add_ps(acc, _mm256_mul_ps(a, b));
}

// The 12 accumulators are named variables, not an array: GCC kept an array of them in memory
// (a store per step, about 2.5x slower).
template <bool kFused>
__attribute__((noinline)) void TileAccumulateAs(const float* a, int64_t a_step, const float* b, int64_t b_step,
                                                int64_t kc, bool first, float* acc_io) {
  auto init = [&](int r, int v) { return first ? _mm256_setzero_ps() : _mm256_loadu_ps(acc_io + r * kTileCols + 8 * v); };
  __m256 c00 = init(0, 0), c01 = init(0, 1), c10 = init(1, 0), c11 = init(1, 1), c20 = init(2, 0), c21 = init(2, 1);
  __m256 c30 = init(3, 0), c31 = init(3, 1), c40 = init(4, 0), c41 = init(4, 1), c50 = init(5, 0), c51 = init(5, 1);
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b + k * b_step), b1 = _mm256_loadu_ps(b + k * b_step + 8);
    const float* ak = a + k * a_step;
    __m256 av = _mm256_broadcast_ss(ak + 0);
    c00 = Step<kFused>(c00, av, b0), c01 = Step<kFused>(c01, av, b1);
    av = _mm256_broadcast_ss(ak + 1);
    c10 = Step<kFused>(c10, av, b0), c11 = Step<kFused>(c11, av, b1);
    av = _mm256_broadcast_ss(ak + 2);
    c20 = Step<kFused>(c20, av, b0), c21 = Step<kFused>(c21, av, b1);
    av = _mm256_broadcast_ss(ak + 3);
    c30 = Step<kFused>(c30, av, b0), c31 = Step<kFused>(c31, av, b1);
    av = _mm256_broadcast_ss(ak + 4);
    c40 = Step<kFused>(c40, av, b0), c41 = Step<kFused>(c41, av, b1);
    av = _mm256_broadcast_ss(ak + 5);
    c50 = Step<kFused>(c50, av, b0), c51 = Step<kFused>(c51, av, b1);
  }
  const __m256 out[kTileRows][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int r = 0; r < kTileRows; ++r)
    for (int v = 0; v < 2; ++v) _mm256_storeu_ps(acc_io + r * kTileCols + 8 * v, out[r][v]);
}

inline void TileAccumulate(bool fused, const float* a, int64_t a_step, const float* b, int64_t b_step, int64_t kc,
                           bool first, float* acc_io) {
  if (fused) TileAccumulateAs<true>(a, a_step, b, b_step, kc, first, acc_io);
  else TileAccumulateAs<false>(a, a_step, b, b_step, kc, first, acc_io);
}

// OperandRange of FP32 vectors, 8 lanes at a time: |x| as bits, the max and the min of
// (bits - 1) (zero wraps to 0xFFFFFFFF, so the min is the smallest nonzero |x| - 1).
struct RangeAcc {
  __m256i mx = _mm256_setzero_si256(), mn_minus1 = _mm256_set1_epi32(-1);
  void Add(__m256 v) {
    const __m256i bits = _mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x7FFFFFFF));
    mx = _mm256_max_epu32(mx, bits);
    mn_minus1 = _mm256_min_epu32(mn_minus1, _mm256_sub_epi32(bits, _mm256_set1_epi32(1)));
  }
  OperandRange Finish() const {
    alignas(32) uint32_t hi[8], lo[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(hi), mx);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lo), mn_minus1);
    OperandRange r;
    uint32_t m1 = 0xFFFFFFFFu;
    for (int i = 0; i < 8; ++i) {
      if (hi[i] > r.max) r.max = hi[i];
      if (lo[i] < m1) m1 = lo[i];
    }
    if (m1 != 0xFFFFFFFFu) r.min_nonzero = m1 + 1;
    return r;
  }
};

}  // namespace
}  // namespace phoenix::kernels::avx2
