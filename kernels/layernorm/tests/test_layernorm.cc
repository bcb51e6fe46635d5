// LayerNorm (layernorm.h) at BF16 and BF16x3: the fast path is bit-identical to
// portable::LayerNorm (same sequential sums, one row per lane); the reference against float64.
#include <cmath>
#include <tuple>
#include <vector>

#include "common/cpu_features.h"
#include "common/kernel_isa.h"
#include "common/testing.h"
#include "layernorm/layernorm.h"

using namespace phoenix;
using namespace phoenix::kernels;
using namespace phoenix::testing;

namespace {

const std::vector<std::tuple<int64_t, int64_t, bool, double>> kCases = {
    {1, 1, true, 0}, {5, 17, false, 0}, {300, 512, true, 0}, {100, 384, true, 0}, {20, 1000, true, 0.01},
    {9, 2048, false, 0}, {33, 3, true, 0}, {17, 2, false, 0}};

struct Params {
  std::vector<float> gamma, beta;
};
Params MakeParams(int64_t cols) {
  Params p{std::vector<float>(cols), std::vector<float>(cols)};
  for (auto& v : p.gamma) v = Normal(1.0f, 0.2f);
  for (auto& v : p.beta) v = Normal(0.0f, 0.2f);
  return p;
}

template <typename T>
std::vector<T> Inputs(int64_t rows, int64_t cols, double special) {
  const std::vector<bf16_t> b = SpecialVec(rows * cols, 2.0f, special);
  std::vector<T> x(b.size());
  for (size_t i = 0; i < b.size(); ++i) x[i] = FromF32<T>(Bf16ToF32(b[i]) * (sizeof(T) == 4 ? 1.001f : 1.0f) + 3.0f);
  return x;
}

template <typename T>
void FastEqualsReference() {
  for (auto [rows, cols, beta, special] : kCases) {
    const Params p = MakeParams(cols);
    LayerNormArgs a;
    a.rows = rows; a.cols = cols; a.gamma = p.gamma.data(); a.beta = beta ? p.beta.data() : nullptr;
    const std::vector<T> x = Inputs<T>(rows, cols, special);
    std::vector<T> r(x.size()), f(x.size());
    portable::LayerNorm(a, x.data(), r.data(), 2);
    LayerNorm(a, x.data(), f.data(), 2);
    const Agreement ag = Compare(r, f);
    PHX_CHECK(ag.exact == ag.count) << rows << "x" << cols << ": " << ag.count - ag.exact << " outputs differ";
  }
}

}  // namespace

PHX_TEST(layernorm_bf16_fast_equals_reference) {
  if (!UseAvx512Bf16() && !UseAvx2Fma()) return Skip("no fast LayerNorm path on this CPU (portable only)");
  FastEqualsReference<bf16_t>();
}
PHX_TEST(layernorm_bf16x3_fast_equals_reference) {
  if (!UseAvx512Bf16() && !UseAvx2Fma()) return Skip("no fast LayerNorm path on this CPU (portable only)");
  FastEqualsReference<split_t>();
}

PHX_TEST(layernorm_reference_vs_float64) {
  for (auto [rows, cols, beta, special] : kCases) {
    if (special > 0) continue;  // NaN / Inf rows: checked against the fast path only
    const Params p = MakeParams(cols);
    LayerNormArgs a;
    a.rows = rows; a.cols = cols; a.gamma = p.gamma.data(); a.beta = beta ? p.beta.data() : nullptr;
    const std::vector<bf16_t> x = Inputs<bf16_t>(rows, cols, 0);
    std::vector<bf16_t> y(x.size());
    portable::LayerNorm(a, x.data(), y.data(), 2);
    int64_t bad = 0;
    for (int64_t r = 0; r < rows; ++r) {
      double mean = 0, var = 0;
      for (int64_t i = 0; i < cols; ++i) mean += Bf16ToF32(x[r * cols + i]);
      mean /= cols;
      for (int64_t i = 0; i < cols; ++i) var += std::pow(Bf16ToF32(x[r * cols + i]) - mean, 2);
      var /= cols;
      const double inv = 1.0 / std::sqrt(var + a.epsilon);
      for (int64_t i = 0; i < cols; ++i) {
        const double v = (Bf16ToF32(x[r * cols + i]) - mean) * inv * p.gamma[i] + (beta ? p.beta[i] : 0.0);
        const double err = std::fabs(Bf16ToF32(y[r * cols + i]) - v);
        // rounding to BF16 + FP32 sums over cols (relative to the row's spread)
        bad += !(err <= std::ldexp(std::fabs(v), -8) + 1e-5 * cols * std::fabs(p.gamma[i]) * (3.0 * inv + 1.0) * 1e-2 + 1e-6);
      }
    }
    PHX_CHECK(bad == 0) << rows << "x" << cols << ": " << bad << " outputs off";
  }
}

int main(int argc, char** argv) { return RunAll(argc, argv); }
