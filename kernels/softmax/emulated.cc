// Emulated Softmax: FP32 row max, KernelExp of (scale*x - max), FP32 sum, multiply by the
// FP32 reciprocal, one rounding (BF16, or hi + lo for BF16x3). Same steps as aie/softmax.cc.
// portable::Softmax is the reference form; on CPUs with AVX512_BF16 the rows run in
// emulated_avx512.cc (the same steps and the same sum order: bit-identical).
// Both are written once over the element type.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common/cpu_features.h"
#include "common/kernel_isa.h"
#include "common/parallel.h"
#include "softmax/softmax.h"

namespace phoenix::kernels {
namespace {

// The row sum's order is part of the numerics (as on the AIE, which sums in 16 lanes): lane j
// sums the elements i = j (mod 16) in order, then the lanes are added as a fixed tree
// (j + 8, then + 4, + 2, + 1). The AVX-512 rows do the same adds, so the paths are bit-identical.
constexpr int kSumLanes = 16;
float ReduceLanes(float* l) {
  for (int half = kSumLanes / 2; half >= 1; half /= 2)
    for (int j = 0; j < half; ++j) l[j] = l[j] + l[j + half];
  return l[0];
}

template <typename T>
void PortableSoftmax(const SoftmaxArgs& a, const T* x, T* y, int num_threads) {
  const int64_t n = a.cols;
  ParallelFor(a.rows, num_threads, [&](int64_t r0, int64_t r1) {
    std::vector<float> e(static_cast<size_t>(n));
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * n;
      float mx = -INFINITY;
      bool has_nan = false;
      for (int64_t i = 0; i < n; ++i) {
        const float v = a.scale * ToF32(xr[i]);
        has_nan |= std::isnan(v);
        mx = v > mx ? v : mx;
      }
      float lanes[kSumLanes] = {};
      for (int64_t i = 0; i < n; ++i) {
        e[i] = KernelExp(a.scale * ToF32(xr[i]) - mx);
        lanes[i % kSumLanes] += e[i];
      }
      const float inv = 1.0f / ReduceLanes(lanes);
      T* yr = y + r * n;
      for (int64_t i = 0; i < n; ++i) yr[i] = FromF32<T>(has_nan ? NAN : e[i] * inv);
    }
  });
}

template <typename T>
void DispatchSoftmax(const SoftmaxArgs& a, const T* x, T* y, int num_threads) {
  if (a.rows <= 0 || a.cols <= 0) return;
  if (!UseAvx512Bf16()) return portable::Softmax(a, x, y, num_threads);
  const int64_t per_thread = std::max<int64_t>(1, 32768 / a.cols);  // >= ~32K elements a thread
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads, a.rows / per_thread)));
  ParallelFor(a.rows, threads, [&](int64_t r0, int64_t r1) { avx512::SoftmaxRows(a, x, y, r0, r1); });
}

}  // namespace

namespace portable {

void Softmax(const SoftmaxArgs& a, const bf16_t* x, bf16_t* y, int num_threads) {
  PortableSoftmax(a, x, y, num_threads);
}
void Softmax(const SoftmaxArgs& a, const split_t* x, split_t* y, int num_threads) {
  PortableSoftmax(a, x, y, num_threads);
}

}  // namespace portable

void Softmax(const SoftmaxArgs& a, const bf16_t* x, bf16_t* y, int num_threads) { DispatchSoftmax(a, x, y, num_threads); }
void Softmax(const SoftmaxArgs& a, const split_t* x, split_t* y, int num_threads) { DispatchSoftmax(a, x, y, num_threads); }

}  // namespace phoenix::kernels
