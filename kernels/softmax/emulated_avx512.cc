// Softmax rows on AVX-512: the same steps as the reference (emulated.cc) in 16 FP32 lanes, for
// BF16 and BF16x3 elements (one template). Row max of scale*x (exact, order-free),
// e_i = KernelExp(scale*x_i - max) bit-identical (ExpNonPositive), FP32 sum in 16 lanes reduced
// as the reference's fixed tree (lane j + j+8, then +4, +2, +1), y_i = e_i * (1 / sum) rounded
// once at the store. Result: bit-identical to the reference. A NaN anywhere in the row makes the
// row NaN, -Inf entries give 0, as in the reference.
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

template <typename T>
void Rows(const SoftmaxArgs& a, const T* x, T* y, int64_t r0, int64_t r1) {
  const int64_t n = a.cols;
  constexpr int64_t kBuf = 4096;  // rows up to this length keep scale*x, then e, in L1
  alignas(64) float buf[kBuf];
  const bool keep = n <= kBuf;
  const __m512 scale = _mm512_set1_ps(a.scale);
  for (int64_t r = r0; r < r1; ++r) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    // Row max. _mm512_max_ps(v, mx) is exactly the reference's (v > mx ? v : mx): NaN lanes
    // keep mx, and the max of non-NaN values does not depend on the order.
    __m512 mx0 = _mm512_set1_ps(-INFINITY), mx1 = mx0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m512 v0 = _mm512_mul_ps(scale, Load16(xr + i));
      const __m512 v1 = _mm512_mul_ps(scale, Load16(xr + i + 16));
      if (keep) {
        _mm512_store_ps(buf + i, v0);
        _mm512_store_ps(buf + i + 16, v1);
      }
      mx0 = _mm512_max_ps(v0, mx0);
      mx1 = _mm512_max_ps(v1, mx1);
    }
    for (; i < n; i += 16) {
      const __mmask16 m = TailMask(n - i);
      const __m512 v = _mm512_mul_ps(scale, MaskLoad16(xr + i, m));
      if (keep) _mm512_mask_storeu_ps(buf + i, m, v);
      mx0 = _mm512_mask_max_ps(mx0, m, v, mx0);
    }
    const float mxs = _mm512_reduce_max_ps(_mm512_max_ps(mx0, mx1));
    const __m512 mxv = _mm512_set1_ps(mxs);
    __m512 sum = _mm512_setzero_ps();
    for (i = 0; i < n; i += 16) {
      const __mmask16 m = TailMask(n - i);
      const __m512 v = keep ? _mm512_maskz_loadu_ps(m, buf + i) : _mm512_mul_ps(scale, MaskLoad16(xr + i, m));
      const __m512 e = ExpNonPositive(_mm512_sub_ps(v, mxv));
      sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(m, e));
      if (keep) _mm512_mask_storeu_ps(buf + i, m, e);
    }
    // The reference's tree, spelled out (the intrinsic _mm512_reduce_add_ps leaves its order to
    // the compiler's headers).
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(sum), _mm512_extractf32x8_ps(sum, 1));
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    const float total = _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
    if (std::isnan(total)) {  // rare: a NaN input makes the whole row NaN (reference: FromF32(NAN))
      __mmask16 nan_lanes = 0;
      for (i = 0; i < n; i += 16) {
        const __mmask16 m = TailMask(n - i);
        const __m512 v = _mm512_mul_ps(scale, MaskLoad16(xr + i, m));
        nan_lanes |= _mm512_mask_cmp_ps_mask(m, v, v, _CMP_UNORD_Q);
      }
      if (nan_lanes) {
        for (i = 0; i < n; i += 16) MaskStore16(yr + i, TailMask(n - i), _mm512_set1_ps(NAN));
        continue;
      }
    }
    const __m512 inv = _mm512_set1_ps(1.0f / total);
    for (i = 0; i < n; i += 16) {
      const __mmask16 m = TailMask(n - i);
      const __m512 e = keep ? _mm512_maskz_loadu_ps(m, buf + i)
                            : ExpNonPositive(_mm512_sub_ps(_mm512_mul_ps(scale, MaskLoad16(xr + i, m)), mxv));
      MaskStore16(yr + i, m, _mm512_mul_ps(e, inv));
    }
  }
}

}  // namespace

void SoftmaxRows(const SoftmaxArgs& a, const bf16_t* x, bf16_t* y, int64_t r0, int64_t r1) { Rows(a, x, y, r0, r1); }
void SoftmaxRows(const SoftmaxArgs& a, const split_t* x, split_t* y, int64_t r0, int64_t r1) { Rows(a, x, y, r0, r1); }

}  // namespace phoenix::kernels::avx512
