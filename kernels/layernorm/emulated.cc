// Emulated LayerNorm: FP32 mean and variance (two passes over the row), rsqrt in FP32,
// one rounding of the output (BF16, or hi + lo for BF16x3). Same steps as aie/layernorm.cc.
// portable::LayerNorm is the reference form; on CPUs with AVX512_BF16 the rows run in
// emulated_avx512.cc (same steps and the same sequential sum order, 16 rows per vector:
// bit-identical; emulated_avx2.cc: the same in 8 lanes on CPUs without AVX512_BF16). All are
// written once over the element type.
#include <algorithm>
#include <vector>

#include "common/cpu_features.h"
#include "common/kernel_isa.h"
#include "common/parallel.h"
#include "layernorm/layernorm.h"

namespace phoenix::kernels {
namespace {

template <typename T>
void PortableLayerNorm(const LayerNormArgs& a, const T* x, T* y, int num_threads) {
  const int64_t n = a.cols;
  ParallelFor(a.rows, num_threads, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(n));
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * n;
      float sum = 0.0f;
      for (int64_t i = 0; i < n; ++i) {
        row[i] = ToF32(xr[i]);
        sum += row[i];
      }
      const float mean = sum / static_cast<float>(n);
      float sq = 0.0f;
      for (int64_t i = 0; i < n; ++i) {
        const float d = row[i] - mean;
        sq += d * d;
      }
      const float inv = KernelRsqrt(sq / static_cast<float>(n) + a.epsilon);
      T* yr = y + r * n;
      for (int64_t i = 0; i < n; ++i) {
        float v = (row[i] - mean) * inv * a.gamma[i];
        if (a.beta) v += a.beta[i];
        yr[i] = FromF32<T>(v);
      }
    }
  });
}

template <typename T>
void DispatchLayerNorm(const LayerNormArgs& a, const T* x, T* y, int num_threads) {
  if (a.rows <= 0 || a.cols <= 0) return;
  const bool avx512 = UseAvx512Bf16();
  if (!avx512 && !UseAvx2Fma()) return portable::LayerNorm(a, x, y, num_threads);
  // Groups of one row per lane for the sums (16 rows on AVX-512, 8 on AVX2), >= ~32K elements a thread.
  const int64_t lanes = avx512 ? 16 : 8;
  const int64_t groups = (a.rows + lanes - 1) / lanes;
  const int64_t per_thread = std::max<int64_t>(1, 32768 / (lanes * a.cols));
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads, groups / per_thread)));
  ParallelFor(groups, threads, [&](int64_t g0, int64_t g1) {
    const int64_t r0 = g0 * lanes, r1 = std::min(a.rows, g1 * lanes);
    if (avx512) avx512::LayerNormRows(a, x, y, r0, r1);
    else avx2::LayerNormRows(a, x, y, r0, r1);
  });
}

}  // namespace

namespace portable {

void LayerNorm(const LayerNormArgs& a, const bf16_t* x, bf16_t* y, int num_threads) {
  PortableLayerNorm(a, x, y, num_threads);
}
void LayerNorm(const LayerNormArgs& a, const split_t* x, split_t* y, int num_threads) {
  PortableLayerNorm(a, x, y, num_threads);
}

}  // namespace portable

void LayerNorm(const LayerNormArgs& a, const bf16_t* x, bf16_t* y, int num_threads) {
  DispatchLayerNorm(a, x, y, num_threads);
}
void LayerNorm(const LayerNormArgs& a, const split_t* x, split_t* y, int num_threads) {
  DispatchLayerNorm(a, x, y, num_threads);
}

}  // namespace phoenix::kernels
