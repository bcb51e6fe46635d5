// LayerNorm rows on AVX-512, bit-identical to the reference (emulated.cc):
// the mean and variance sums run in the reference's sequential order, one row per lane: 16 rows
// at a time, lane j gathers row j's elements pairwise (x[i], x[i+1]) and adds them in index order,
// so every row's FP32 sums, mean, variance and inv = 1 / sqrt(var + eps) (IEEE sqrt and divide,
// = KernelRsqrt) equal the scalar ones. The output pass is y = ((x - mean) * inv) * gamma
// (+ beta) in 16 columns per step, one BF16 rounding.
#pragma GCC optimize("fp-contract=off")  // before any include: see common/avx512_math.h
// GCC 12 warns falsely about _mm512_undefined_* inside intrinsics under an optimize pragma.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "common/avx512_math.h"
#include "common/kernel_isa.h"

namespace phoenix::kernels::avx512 {
namespace {

// Lane j <- float of the BF16 pair at element offset 2*i (low = even element, high = odd).
inline __m512 PairLo(__m512i g) { return _mm512_castsi512_ps(_mm512_slli_epi32(g, 16)); }
inline __m512 PairHi(__m512i g) { return _mm512_castsi512_ps(_mm512_and_si512(g, _mm512_set1_epi32(int32_t(0xffff0000u)))); }

// Sequential FP32 sums of rows r..r+rows (rows <= 16), lane per row: sum_j = x0 + x1 + ... and
// sq_j = (x0 - mean_j)^2 + (x1 - mean_j)^2 + ..., exactly as the reference loops.
void RowStats(const bf16_t* x, int64_t n, int rows, float eps, float* mean_out, float* inv_out) {
  const __mmask16 lanes = TailMask(rows);
  const int64_t row_bytes = n * 2;
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(static_cast<int32_t>(row_bytes)));
  const int64_t pairs = n / 2;
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < pairs; ++i) {
    const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, idx, x + 2 * i, 1);
    sum = _mm512_add_ps(sum, PairLo(g));
    sum = _mm512_add_ps(sum, PairHi(g));
  }
  if (n & 1) {  // last element: the high half of the pair that ends at n - 1
    const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, idx, x + n - 2, 1);
    sum = _mm512_add_ps(sum, PairHi(g));
  }
  const __m512 nf = _mm512_set1_ps(static_cast<float>(n));
  const __m512 mean = _mm512_div_ps(sum, nf);
  __m512 sq = _mm512_setzero_ps();
  for (int64_t i = 0; i < pairs; ++i) {
    const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, idx, x + 2 * i, 1);
    const __m512 d0 = _mm512_sub_ps(PairLo(g), mean), d1 = _mm512_sub_ps(PairHi(g), mean);
    sq = _mm512_add_ps(sq, _mm512_mul_ps(d0, d0));
    sq = _mm512_add_ps(sq, _mm512_mul_ps(d1, d1));
  }
  if (n & 1) {
    const __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, idx, x + n - 2, 1);
    const __m512 d = _mm512_sub_ps(PairHi(g), mean);
    sq = _mm512_add_ps(sq, _mm512_mul_ps(d, d));
  }
  const __m512 var_eps = _mm512_add_ps(_mm512_div_ps(sq, nf), _mm512_set1_ps(eps));
  const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_sqrt_ps(var_eps));
  _mm512_storeu_ps(mean_out, mean);
  _mm512_storeu_ps(inv_out, inv);
}

}  // namespace

void LayerNormRows(const LayerNormArgs& a, const bf16_t* x, bf16_t* y, int64_t r0, int64_t r1) {
  const int64_t n = a.cols;
  alignas(64) float mean[16], inv[16];
  for (int64_t g0 = r0; g0 < r1; g0 += 16) {
    const int rows = static_cast<int>(r1 - g0 < 16 ? r1 - g0 : 16);
    if (n >= 2) {
      RowStats(x + g0 * n, n, rows, a.epsilon, mean, inv);
    } else {  // n == 1: sum = x0, mean = x0 / 1, var = 0
      for (int j = 0; j < rows; ++j) {
        mean[j] = Bf16ToF32Lane(x[g0 + j]) / 1.0f;
        const float d = Bf16ToF32Lane(x[g0 + j]) - mean[j];
        inv[j] = 1.0f / std::sqrt(d * d / 1.0f + a.epsilon);
      }
    }
    for (int j = 0; j < rows; ++j) {
      const bf16_t* xr = x + (g0 + j) * n;
      bf16_t* yr = y + (g0 + j) * n;
      const __m512 mv = _mm512_set1_ps(mean[j]), iv = _mm512_set1_ps(inv[j]);
      for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = TailMask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(MaskLoadBf16x16(xr + i, m), mv), iv),
                                 _mm512_maskz_loadu_ps(m, a.gamma + i));
        if (a.beta) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, a.beta + i));
        MaskStoreBf16x16(yr + i, m, v);
      }
    }
  }
}

}  // namespace phoenix::kernels::avx512
