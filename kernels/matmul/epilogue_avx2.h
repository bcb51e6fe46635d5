// The MatMul epilogue on AVX2, for the *_avx2.cc MatMul kernels only (BF16 and INT8): from a
// tile of FP32 accumulators, v = acc (* col_scale[n]) * alpha (+ bias[n]) (GELU) (+ residual)
// (fake-quant), ONE rounding to T (BF16, or hi + lo for BF16x3), strided store: the reference's
// FP32 steps in order (ApplyEpilogue, matmul.h; matmul_int8/README.md), 8 lanes at a time.
// Needs -mavx2 -mfma and fp-contract=off in the including file (common/avx2_math.h).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "common/avx2_math.h"

namespace phoenix::kernels::avx2 {
namespace {

constexpr int kEpilogueCols = 16;  // columns of an accumulator tile (row stride of `acc`)

// A following QuantizeLinear -> DequantizeLinear on the output (matmul_int8.h QuantParams).
struct OutQuant {
  float scale, lo, hi;  // lo, hi: qmin - zp, qmax - zp as FP32
};

struct EpilogueCtx {
  const float* col_scale;  // col_scale + n0 (INT8: sa * sb[n]), or nullptr
  float alpha;
  const float* bias;       // bias + n0, or nullptr
  int gelu;                // 0 none, 1 erf, 2 tanh
  const void* r;           // residual at (m0, n0) or nullptr (element type of C)
  int64_t r_rs, r_cs;
  const OutQuant* out_quant;  // or nullptr
  void* c;                 // C at (m0, n0)
  int64_t c_rs, c_cs;
  int rows, cols;          // valid rows and columns (<= kEpilogueCols)
};

inline __m256 LoadCols(const float* p, int lanes) { return lanes == 8 ? _mm256_loadu_ps(p) : LoadN(p, lanes); }

// quantize then dequantize (matmul_int8.h Quantize / Dequantize): clamp(v / s) in the MLAS order
// (a NaN becomes lo), round half to even, times s.
inline __m256 FakeQuant(__m256 v, const OutQuant& q) {
  v = _mm256_div_ps(v, _mm256_set1_ps(q.scale));
  v = _mm256_max_ps(v, _mm256_set1_ps(q.lo));  // v > lo ? v : lo
  v = _mm256_min_ps(v, _mm256_set1_ps(q.hi));  // v < hi ? v : hi
  const __m256 r = _mm256_cvtepi32_ps(_mm256_cvtps_epi32(v));  // nearest even (default MXCSR)
  return _mm256_mul_ps(r, _mm256_set1_ps(q.scale));
}

template <typename T>
void StoreTile(const EpilogueCtx& e, const float* acc) {
  const T* res = static_cast<const T*>(e.r);
  T* out = static_cast<T*>(e.c);
  for (int v = 0; v < kEpilogueCols / 8; ++v) {
    const int cnt = e.cols - 8 * v;
    if (cnt <= 0) break;
    const int lanes = cnt < 8 ? cnt : 8;
    const __m256 bias = e.bias ? LoadCols(e.bias + 8 * v, lanes) : _mm256_setzero_ps();
    const __m256 cscale = e.col_scale ? LoadCols(e.col_scale + 8 * v, lanes) : _mm256_setzero_ps();
    for (int r = 0; r < e.rows; ++r) {
      __m256 x = _mm256_loadu_ps(acc + r * kEpilogueCols + 8 * v);
      if (e.col_scale) x = _mm256_mul_ps(x, cscale);
      x = _mm256_mul_ps(x, _mm256_set1_ps(e.alpha));
      if (e.bias) x = _mm256_add_ps(x, bias);
      if (e.gelu) x = GeluV(x, e.gelu == 2);
      if (res) {
        const T* rp = res + r * e.r_rs + 8 * v * e.r_cs;
        if (e.r_cs == 1) {
          x = _mm256_add_ps(x, lanes == 8 ? Load8(rp) : LoadN(rp, lanes));
        } else {
          T tmp[8] = {};
          for (int j = 0; j < lanes; ++j) tmp[j] = rp[j * e.r_cs];
          x = _mm256_add_ps(x, Load8(tmp));
        }
      }
      if (e.out_quant) x = FakeQuant(x, *e.out_quant);
      T* cp = out + r * e.c_rs + 8 * v * e.c_cs;
      if (e.c_cs == 1) {
        if (lanes == 8) Store8(cp, x);
        else StoreN(cp, lanes, x);
      } else {
        T tmp[8];
        Store8(tmp, x);
        for (int j = 0; j < lanes; ++j) cp[j * e.c_cs] = tmp[j];
      }
    }
  }
}

}  // namespace
}  // namespace phoenix::kernels::avx2
