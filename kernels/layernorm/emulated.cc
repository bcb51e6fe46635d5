// Emulated LayerNorm: FP32 mean and variance (two passes over the row), rsqrt in FP32,
// one BF16 rounding of the output. Same steps as aie/layernorm.cc.
#include <vector>

#include "common/parallel.h"
#include "layernorm/layernorm.h"

namespace phoenix::kernels {

void LayerNorm(const LayerNormArgs& a, const bf16_t* x, bf16_t* y, int num_threads) {
  const int64_t n = a.cols;
  ParallelFor(a.rows, num_threads, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(n));
    for (int64_t r = r0; r < r1; ++r) {
      const bf16_t* xr = x + r * n;
      float sum = 0.0f;
      for (int64_t i = 0; i < n; ++i) {
        row[i] = Bf16ToF32(xr[i]);
        sum += row[i];
      }
      const float mean = sum / static_cast<float>(n);
      float sq = 0.0f;
      for (int64_t i = 0; i < n; ++i) {
        const float d = row[i] - mean;
        sq += d * d;
      }
      const float inv = KernelRsqrt(sq / static_cast<float>(n) + a.epsilon);
      bf16_t* yr = y + r * n;
      for (int64_t i = 0; i < n; ++i) {
        float v = (row[i] - mean) * inv * a.gamma[i];
        if (a.beta) v += a.beta[i];
        yr[i] = F32ToBf16(v);
      }
    }
  });
}

}  // namespace phoenix::kernels
