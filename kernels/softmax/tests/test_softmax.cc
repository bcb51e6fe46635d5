// Softmax (softmax.h) at BF16 and BF16x3: the fast path bit-identical to portable::Softmax (the
// same 16-lane sum and reduction tree), on rows with NaN, Inf, all -Inf rows, denormals; the
// reference against a float64 softmax.
#include <cmath>
#include <cstdio>
#include <tuple>
#include <vector>

#include "common/cpu_features.h"
#include "common/kernel_isa.h"
#include "common/testing.h"
#include "softmax/softmax.h"

using namespace phoenix;
using namespace phoenix::kernels;
using namespace phoenix::testing;

namespace {

const std::vector<std::tuple<int64_t, int64_t, float, double>> kCases = {
    {1, 1, 1.0f, 0}, {3, 17, 1.0f, 0}, {200, 1500, 0.125f, 0}, {64, 1500, 1.0f, 0.001}, {7, 5000, 1.0f, 0},
    {40, 64, 8.0f, 0}, {30, 33, 1.0f, 0.05}};

template <typename T>
std::vector<T> Inputs(int64_t rows, int64_t cols, double special) {
  const std::vector<bf16_t> b = SpecialVec(rows * cols, 3.0f, special);
  std::vector<T> x(b.size());
  for (size_t i = 0; i < b.size(); ++i) x[i] = FromF32<T>(Bf16ToF32(b[i]) * (1.0f + (sizeof(T) == 4 ? 1e-3f : 0.0f)));
  if (rows > 2)
    for (int64_t i = 0; i < cols; ++i) x[2 * cols + i] = FromF32<T>(-INFINITY);  // an all -Inf row
  return x;
}

template <typename T>
void FastBitIdentical() {
  for (auto [rows, cols, scale, special] : kCases) {
    SoftmaxArgs a;
    a.rows = rows; a.cols = cols; a.scale = scale;
    const std::vector<T> x = Inputs<T>(rows, cols, special);
    std::vector<T> r(x.size()), f(x.size());
    portable::Softmax(a, x.data(), r.data(), 2);
    Softmax(a, x.data(), f.data(), 2);
    const Agreement ag = Compare(r, f);
    PHX_CHECK(ag.max_ulp == 0) << rows << "x" << cols << " scale " << scale << ": max " << ag.max_ulp << " ulp";
    Note("softmax %lldx%lld scale %g specials %g: exact %.3f%%, max %lld ulp", (long long)rows, (long long)cols, scale,
         special, 100.0 * ag.exact / ag.count, (long long)ag.max_ulp);
  }
}

}  // namespace

PHX_TEST(softmax_bf16_fast_vs_reference) {
  if (!UseAvx512Bf16()) return Skip("no fast Softmax path on this CPU (portable only)");
  FastBitIdentical<bf16_t>();
}
PHX_TEST(softmax_bf16x3_fast_vs_reference) {
  if (!UseAvx512Bf16()) return Skip("no fast Softmax path on this CPU (portable only)");
  FastBitIdentical<split_t>();
}

// The reference against float64: KernelExp (2e-7 relative) + FP32 sum + one rounding; NaN rows
// NaN, all -Inf rows NaN (0 / 0, as the CPU EP), -Inf entries 0.
PHX_TEST(softmax_reference_vs_float64) {
  for (auto [rows, cols, scale, special] : kCases) {
    SoftmaxArgs a;
    a.rows = rows; a.cols = cols; a.scale = scale;
    const std::vector<bf16_t> x = Inputs<bf16_t>(rows, cols, special);
    std::vector<bf16_t> y(x.size());
    portable::Softmax(a, x.data(), y.data(), 2);
    int64_t bad = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const bf16_t* xr = x.data() + r * cols;
      double mx = -INFINITY;
      bool nan = false;
      for (int64_t i = 0; i < cols; ++i) {
        const double v = double(scale) * Bf16ToF32(xr[i]);
        nan |= std::isnan(v);
        mx = std::max(mx, v);
      }
      double sum = 0;
      for (int64_t i = 0; i < cols; ++i) sum += std::exp(double(scale) * Bf16ToF32(xr[i]) - mx);
      for (int64_t i = 0; i < cols; ++i) {
        const double p = std::exp(double(scale) * Bf16ToF32(xr[i]) - mx) / sum;
        const float got = Bf16ToF32(y[r * cols + i]);
        if (nan || std::isnan(p)) {
          bad += !std::isnan(got);
          continue;
        }
        // BF16 rounding + exp's error + the FP32 rounding of scale * x - max (relative to its size)
        const double arg = p > 0 ? std::fabs(double(scale) * Bf16ToF32(xr[i])) + std::fabs(mx) : 0.0;
        const bool off = !(std::fabs(got - p) <= std::ldexp(p, -8) + (2e-6 + arg * 2.4e-7) * p + 1.2e-38 /* flush below 2^-126 */ + cols * 6e-8 * p);
        if (off && bad < 3) Note("row %lld col %lld: got %g want %g (x %g, max %g)", (long long)r, (long long)i, got, p, Bf16ToF32(xr[i]), mx);
        bad += off;
      }
    }
    PHX_CHECK(bad == 0) << rows << "x" << cols << ": " << bad << " outputs off";
  }
}

int main(int argc, char** argv) { return RunAll(argc, argv); }
