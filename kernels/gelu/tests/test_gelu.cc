// GELU (gelu.h): the fast path is bit-identical to portable::Gelu over every BF16 input, both
// modes, at BF16 and BF16x3 (the same FP32 steps, one rounding to the stored type); the reference
// is within its stated error of float64 GELU.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/cpu_features.h"
#include "common/kernel_isa.h"
#include "common/testing.h"
#include "gelu/gelu.h"

using namespace phoenix;
using namespace phoenix::kernels;
using namespace phoenix::testing;

namespace {

// Every BF16 bit pattern, as T (for BF16x3 the hi + lo pair of each, lo = 0).
template <typename T>
std::vector<T> AllBf16Inputs() {
  std::vector<T> x(65536);
  for (int i = 0; i < 65536; ++i) x[i] = FromF32<T>(Bf16ToF32(static_cast<bf16_t>(i)));
  return x;
}

template <typename T>
void FastEqualsReference() {
  const std::vector<T> x = AllBf16Inputs<T>();
  for (GeluMode mode : {GeluMode::kErf, GeluMode::kTanh}) {
    std::vector<T> r(x.size()), f(x.size());
    portable::Gelu(mode, 65536, x.data(), r.data(), 2);
    Gelu(mode, 65536, x.data(), f.data(), 2);
    const Agreement ag = Compare(r, f);
    PHX_CHECK(ag.exact == ag.count) << "mode " << int(mode) << ": " << ag.count - ag.exact << " outputs differ, max "
                                    << ag.max_ulp << " ulp";
    for (int64_t n : {1, 15, 17, 1000}) {  // tails and thread splits
      std::vector<T> r2(n), f2(n);
      portable::Gelu(mode, n, x.data() + 16000, r2.data(), 2);
      Gelu(mode, n, x.data() + 16000, f2.data(), 2);
      const Agreement a2 = Compare(r2, f2);
      PHX_CHECK(a2.exact == a2.count) << "n = " << n;
    }
  }
}

}  // namespace

PHX_TEST(gelu_bf16_fast_equals_reference_all_inputs) {
  if (!UseAvx512Bf16()) return Skip("no fast GELU path on this CPU (portable only)");
  FastEqualsReference<bf16_t>();
}
PHX_TEST(gelu_bf16x3_fast_equals_reference_all_inputs) {
  if (!UseAvx512Bf16()) return Skip("no fast GELU path on this CPU (portable only)");
  FastEqualsReference<split_t>();
}

// BF16x3 inputs are FP32 values (split_t): the fast GELU on a sample of every FP32 bit pattern
// (the erf form's reciprocal without vdivps and its exp, common/avx512_math.h, must stay
// bit-identical to GeluF32 for any FP32 argument, as MatMul epilogues pass; checked once over all
// 2^32 patterns against the vdivps form, 2026-05: 0 differences).
PHX_TEST(gelu_bf16x3_fast_equals_reference_sampled_fp32) {
  if (!UseAvx512Bf16()) return Skip("no fast GELU path on this CPU (portable only)");
  std::vector<split_t> x;
  for (uint64_t b = 0; b < (uint64_t{1} << 32); b += 2039) {
    float f;
    const uint32_t u = static_cast<uint32_t>(b);
    std::memcpy(&f, &u, sizeof f);
    x.push_back(split_t{f});
  }
  // arguments whose 1 + z / 2 (z = |x| / sqrt 2) lands near all-ones mantissas (the lanes
  // RecipAtLeastOne divides) and near 2^126
  for (float d : {1.99999988f, 3.99999976f, 7.9999995f, 15.999999f, 0x1.fffffep+40f, 0x1p126f, 0x1.fffffep+127f})
    for (int j = -64; j <= 64; ++j) x.push_back(split_t{std::nextafter((d - 1.0f) * 2.0f * 1.41421356f, j < 0 ? 0.0f : INFINITY) * (1.0f + j * 1e-7f)});
  const int64_t n = static_cast<int64_t>(x.size());
  for (GeluMode mode : {GeluMode::kErf, GeluMode::kTanh}) {
    std::vector<split_t> r(n), f(n);
    portable::Gelu(mode, n, x.data(), r.data(), 2);
    Gelu(mode, n, x.data(), f.data(), 2);
    const Agreement ag = Compare(r, f);
    PHX_CHECK(ag.exact == ag.count) << "mode " << int(mode) << ": " << ag.count - ag.exact << " of " << n
                                    << " outputs differ, max " << ag.max_ulp << " ulp";
  }
}

// The reference against float64 GELU over every finite BF16 input: erf / tanh approximations
// (|error| < 1.2e-7 absolute, README) + FP32 steps + one rounding to BF16 (or hi + lo).
PHX_TEST(gelu_reference_vs_float64) {
  for (GeluMode mode : {GeluMode::kErf, GeluMode::kTanh}) {
    const std::vector<bf16_t> x = AllBf16Inputs<bf16_t>();
    const std::vector<split_t> xs = AllBf16Inputs<split_t>();
    std::vector<bf16_t> y(x.size());
    std::vector<split_t> ys(x.size());
    portable::Gelu(mode, 65536, x.data(), y.data(), 2);
    portable::Gelu(mode, 65536, xs.data(), ys.data(), 2);
    int64_t bad = 0, bad_split = 0, nan_bad = 0;
    for (int i = 0; i < 65536; ++i) {
      const double v = Bf16ToF32(x[i]);
      if (std::isnan(v)) {
        nan_bad += !IsNan(y[i]) || !std::isnan(ys[i].v);
        continue;
      }
      if (!std::isfinite(v)) continue;
      const double g = mode == GeluMode::kErf ? 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)))
                                              : 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
      // FP32 overflow of x^3 in the tanh form for |x| > ~7e12 is the reference's own business
      if (!std::isfinite(g) || std::fabs(v) > 1e12) continue;
      const double approx = 2e-7 * std::fabs(v) + 1e-37;  // erf / tanh error times |x|/2, FP32 steps
      bad += !(std::fabs(Bf16ToF32(y[i]) - g) <= std::ldexp(std::fabs(g), -8) + approx);
      bad_split += !(std::fabs(ys[i].v - g) <= std::ldexp(std::fabs(g), -16) + 4 * approx);
    }
    PHX_CHECK(bad == 0 && bad_split == 0 && nan_bad == 0)
        << "mode " << int(mode) << ": " << bad << " BF16 and " << bad_split << " BF16x3 outputs off, " << nan_bad
        << " NaN not propagated";
  }
}

int main(int argc, char** argv) { return RunAll(argc, argv); }
