// LayerNorm rows on AVX2 (CPUs without AVX512_BF16), bit-identical to the reference (emulated.cc),
// for BF16 and BF16x3 elements: the AVX-512 body's method in 8 lanes. The mean and variance sums
// run in the reference's sequential order, one row per lane (8 rows at a time, lane j gathering
// row j's elements pairwise and adding them in index order), so every row's FP32 sums, mean,
// variance and 1 / sqrt(var + eps) equal the scalar ones; rows too long for 32-bit gather offsets
// take the scalar statistics. The output pass is y = ((x - mean) * inv) * gamma (+ beta), 8
// columns per step, one rounding at the store.
#pragma GCC optimize("fp-contract=off")  // before any include: see common/avx2_math.h
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "common/avx2_math.h"
#include "common/checked_size.h"
#include "common/kernel_isa.h"
#include "layernorm/row_stats_scalar.h"

namespace phoenix::kernels::avx2 {
namespace {

// Lane j <- elements i and i + 1 of row j (byte offset rows[j] from x).
inline void GatherPair(const bf16_t* x, __m256i rows, int64_t i, __m256& e0, __m256& e1) {
  const __m256i g = _mm256_i32gather_epi32(reinterpret_cast<const int*>(x + i), rows, 1);
  e0 = _mm256_castsi256_ps(_mm256_slli_epi32(g, 16));
  e1 = _mm256_castsi256_ps(_mm256_and_si256(g, _mm256_set1_epi32(int32_t(0xffff0000u))));
}
inline void GatherPair(const split_t* x, __m256i rows, int64_t i, __m256& e0, __m256& e1) {
  e0 = _mm256_i32gather_ps(reinterpret_cast<const float*>(x + i), rows, 1);
  e1 = _mm256_i32gather_ps(reinterpret_cast<const float*>(x + i + 1), rows, 1);
}
// Lane j <- the last element (n - 1, n >= 2) of row j (the gather stays inside the row).
inline __m256 GatherLast(const bf16_t* x, __m256i rows, int64_t n) {
  const __m256i g = _mm256_i32gather_epi32(reinterpret_cast<const int*>(x + n - 2), rows, 1);
  return _mm256_castsi256_ps(_mm256_and_si256(g, _mm256_set1_epi32(int32_t(0xffff0000u))));
}
inline __m256 GatherLast(const split_t* x, __m256i rows, int64_t n) {
  return _mm256_i32gather_ps(reinterpret_cast<const float*>(x + n - 1), rows, 1);
}

// Statistics of 8 rows (n >= 2; rows past the group repeat its last row, so every gather reads
// real data), lane per row, in the reference's order.
template <typename T>
void RowStats8(const T* x, int64_t n, int rows, float eps, float* mean_out, float* inv_out) {
  alignas(32) int32_t offs[8];
  for (int j = 0; j < 8; ++j) offs[j] = static_cast<int32_t>((j < rows ? j : rows - 1) * n * static_cast<int64_t>(sizeof(T)));
  const __m256i row_offsets = _mm256_load_si256(reinterpret_cast<const __m256i*>(offs));
  const int64_t pairs = n / 2;
  __m256 sum = _mm256_setzero_ps();
  for (int64_t i = 0; i < pairs; ++i) {
    __m256 e0, e1;
    GatherPair(x, row_offsets, 2 * i, e0, e1);
    sum = _mm256_add_ps(sum, e0);
    sum = _mm256_add_ps(sum, e1);
  }
  if (n & 1) sum = _mm256_add_ps(sum, GatherLast(x, row_offsets, n));
  const __m256 nf = _mm256_set1_ps(static_cast<float>(n));
  const __m256 mean = _mm256_div_ps(sum, nf);
  __m256 sq = _mm256_setzero_ps();
  for (int64_t i = 0; i < pairs; ++i) {
    __m256 e0, e1;
    GatherPair(x, row_offsets, 2 * i, e0, e1);
    const __m256 d0 = _mm256_sub_ps(e0, mean), d1 = _mm256_sub_ps(e1, mean);
    sq = _mm256_add_ps(sq, _mm256_mul_ps(d0, d0));
    sq = _mm256_add_ps(sq, _mm256_mul_ps(d1, d1));
  }
  if (n & 1) {
    const __m256 d = _mm256_sub_ps(GatherLast(x, row_offsets, n), mean);
    sq = _mm256_add_ps(sq, _mm256_mul_ps(d, d));
  }
  const __m256 var_eps = _mm256_add_ps(_mm256_div_ps(sq, nf), _mm256_set1_ps(eps));
  _mm256_storeu_ps(mean_out, mean);
  _mm256_storeu_ps(inv_out, _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_sqrt_ps(var_eps)));
}

template <typename T>
void Rows(const LayerNormArgs& a, const T* x, T* y, int64_t r0, int64_t r1) {
  const int64_t n = a.cols;
  const bool gather = n >= 2 && GatherOffsetsFit(n, sizeof(T), 8, 2 * sizeof(T));  // issue 11: no wrapping
  alignas(32) float mean[8], inv[8];
  for (int64_t g0 = r0; g0 < r1; g0 += 8) {
    const int rows = static_cast<int>(r1 - g0 < 8 ? r1 - g0 : 8);
    if (gather) {
      RowStats8(x + g0 * n, n, rows, a.epsilon, mean, inv);
    } else {
      for (int j = 0; j < rows; ++j) RowStatsScalar(x + (g0 + j) * n, n, a.epsilon, mean + j, inv + j);
    }
    for (int j = 0; j < rows; ++j) {
      const T* xr = x + (g0 + j) * n;
      T* yr = y + (g0 + j) * n;
      const __m256 mv = _mm256_set1_ps(mean[j]), iv = _mm256_set1_ps(inv[j]);
      for (int64_t i = 0; i < n; i += 8) {
        const int lanes = static_cast<int>(n - i < 8 ? n - i : 8);
        const __m256 xv = lanes == 8 ? Load8(xr + i) : LoadN(xr + i, lanes);
        const __m256 gv = lanes == 8 ? _mm256_loadu_ps(a.gamma + i) : LoadN(a.gamma + i, lanes);
        __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(xv, mv), iv), gv);
        if (a.beta) v = _mm256_add_ps(v, lanes == 8 ? _mm256_loadu_ps(a.beta + i) : LoadN(a.beta + i, lanes));
        if (lanes == 8) Store8(yr + i, v);
        else StoreN(yr + i, lanes, v);
      }
    }
  }
}

}  // namespace

void LayerNormRows(const LayerNormArgs& a, const bf16_t* x, bf16_t* y, int64_t r0, int64_t r1) { Rows(a, x, y, r0, r1); }
void LayerNormRows(const LayerNormArgs& a, const split_t* x, split_t* y, int64_t r0, int64_t r1) { Rows(a, x, y, r0, r1); }

}  // namespace phoenix::kernels::avx2
