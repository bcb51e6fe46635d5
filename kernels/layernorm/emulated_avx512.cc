// LayerNorm rows on AVX-512, bit-identical to the reference (emulated.cc), for BF16 and BF16x3
// elements (one template): the mean and variance sums run in the reference's sequential order,
// one row per lane: 16 rows at a time, lane j gathers row j's elements pairwise (x[i], x[i+1])
// and adds them in index order, so every row's FP32 sums, mean, variance and
// inv = 1 / sqrt(var + eps) (IEEE sqrt and divide, = KernelRsqrt) equal the scalar ones. The
// output pass is y = ((x - mean) * inv) * gamma (+ beta) in 16 columns per step, one rounding at
// the store (BF16, or hi + lo).
#pragma GCC optimize("fp-contract=off")  // before any include: see common/avx512_math.h
// GCC 12 warns falsely about _mm512_undefined_* inside intrinsics under an optimize pragma.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "common/avx512_math.h"
#include "common/checked_size.h"
#include "common/kernel_isa.h"
#include "layernorm/row_stats_scalar.h"

namespace phoenix::kernels::avx512 {
namespace {

// Lane j <- float of the BF16 pair at element offset 2*i (low = even element, high = odd).
inline __m512 PairLo(__m512i g) { return _mm512_castsi512_ps(_mm512_slli_epi32(g, 16)); }
inline __m512 PairHi(__m512i g) { return _mm512_castsi512_ps(_mm512_and_si512(g, _mm512_set1_epi32(int32_t(0xffff0000u)))); }

// Lane j <- elements i and i + 1 of row j (byte offset rows[j] from x). BF16: one 32-bit gather
// per pair; BF16x3: one FP32 gather per element.
inline void GatherPair(const bf16_t* x, __m512i rows, __mmask16 lanes, int64_t i, __m512& e0, __m512& e1) {
  const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, rows, x + i, 1);
  e0 = PairLo(g);
  e1 = PairHi(g);
}
inline void GatherPair(const split_t* x, __m512i rows, __mmask16 lanes, int64_t i, __m512& e0, __m512& e1) {
  e0 = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, rows, x + i, 1);
  e1 = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, rows, x + i + 1, 1);
}

// Lane j <- the last element (n - 1, n >= 2) of row j. BF16: the high half of the pair that
// ends there, so the 32-bit gather stays inside the row.
inline __m512 GatherLast(const bf16_t* x, __m512i rows, __mmask16 lanes, int64_t n) {
  return PairHi(_mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, rows, x + n - 2, 1));
}
inline __m512 GatherLast(const split_t* x, __m512i rows, __mmask16 lanes, int64_t n) {
  return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, rows, x + n - 1, 1);
}

// Sequential FP32 sums of rows r..r+rows (rows <= 16, n >= 2), lane per row: sum_j = x0 + x1 +
// ... and sq_j = (x0 - mean_j)^2 + (x1 - mean_j)^2 + ..., exactly as the reference loops.
template <typename T>
void RowStats(const T* x, int64_t n, int rows, float eps, float* mean_out, float* inv_out) {
  const __mmask16 lanes = TailMask(rows);
  const int64_t row_bytes = n * static_cast<int64_t>(sizeof(T));
  const __m512i row_offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                 _mm512_set1_epi32(static_cast<int32_t>(row_bytes)));
  const int64_t pairs = n / 2;
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < pairs; ++i) {
    __m512 e0, e1;
    GatherPair(x, row_offsets, lanes, 2 * i, e0, e1);
    sum = _mm512_add_ps(sum, e0);
    sum = _mm512_add_ps(sum, e1);
  }
  if (n & 1) sum = _mm512_add_ps(sum, GatherLast(x, row_offsets, lanes, n));
  const __m512 nf = _mm512_set1_ps(static_cast<float>(n));
  const __m512 mean = _mm512_div_ps(sum, nf);
  __m512 sq = _mm512_setzero_ps();
  for (int64_t i = 0; i < pairs; ++i) {
    __m512 e0, e1;
    GatherPair(x, row_offsets, lanes, 2 * i, e0, e1);
    const __m512 d0 = _mm512_sub_ps(e0, mean), d1 = _mm512_sub_ps(e1, mean);
    sq = _mm512_add_ps(sq, _mm512_mul_ps(d0, d0));
    sq = _mm512_add_ps(sq, _mm512_mul_ps(d1, d1));
  }
  if (n & 1) {
    const __m512 d = _mm512_sub_ps(GatherLast(x, row_offsets, lanes, n), mean);
    sq = _mm512_add_ps(sq, _mm512_mul_ps(d, d));
  }
  const __m512 var_eps = _mm512_add_ps(_mm512_div_ps(sq, nf), _mm512_set1_ps(eps));
  const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_sqrt_ps(var_eps));
  _mm512_storeu_ps(mean_out, mean);
  _mm512_storeu_ps(inv_out, inv);
}

template <typename T>
void Rows(const LayerNormArgs& a, const T* x, T* y, int64_t r0, int64_t r1) {
  const int64_t n = a.cols;
  // RowStats gathers lane j at byte offset j * row_bytes (+ up to 2 elements) as int32: rows of
  // 71.6M BF16 elements or more would wrap (issue 11), so those take the scalar statistics.
  const bool gather = GatherOffsetsFit(n, sizeof(T), 16, 2 * sizeof(T));
  alignas(64) float mean[16], inv[16];
  for (int64_t g0 = r0; g0 < r1; g0 += 16) {
    const int rows = static_cast<int>(r1 - g0 < 16 ? r1 - g0 : 16);
    if (n >= 2 && !gather) {
      for (int j = 0; j < rows; ++j) RowStatsScalar(x + (g0 + j) * n, n, a.epsilon, mean + j, inv + j);
    } else if (n >= 2) {
      RowStats(x + g0 * n, n, rows, a.epsilon, mean, inv);
    } else {  // n == 1: the rows' elements are one contiguous vector; the reference's steps
      const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
      const __m512 x0 = MaskLoad16(x + g0, TailMask(rows));
      const __m512 mv = _mm512_div_ps(_mm512_add_ps(zero, x0), one);  // 0 + x0 turns -0 into +0
      const __m512 d = _mm512_sub_ps(x0, mv);
      const __m512 var_eps = _mm512_add_ps(_mm512_div_ps(_mm512_add_ps(zero, _mm512_mul_ps(d, d)), one),
                                           _mm512_set1_ps(a.epsilon));
      _mm512_storeu_ps(mean, mv);
      _mm512_storeu_ps(inv, _mm512_div_ps(one, _mm512_sqrt_ps(var_eps)));
    }
    for (int j = 0; j < rows; ++j) {
      const T* xr = x + (g0 + j) * n;
      T* yr = y + (g0 + j) * n;
      const __m512 mv = _mm512_set1_ps(mean[j]), iv = _mm512_set1_ps(inv[j]);
      for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = TailMask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(MaskLoad16(xr + i, m), mv), iv),
                                 _mm512_maskz_loadu_ps(m, a.gamma + i));
        if (a.beta) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, a.beta + i));
        MaskStore16(yr + i, m, v);
      }
    }
  }
}

}  // namespace

void LayerNormRows(const LayerNormArgs& a, const bf16_t* x, bf16_t* y, int64_t r0, int64_t r1) {
  Rows(a, x, y, r0, r1);
}
void LayerNormRows(const LayerNormArgs& a, const split_t* x, split_t* y, int64_t r0, int64_t r1) {
  Rows(a, x, y, r0, r1);
}

}  // namespace phoenix::kernels::avx512
