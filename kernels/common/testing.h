// The C++ test tier's helpers (CTest; cmake/PhoenixTests.cmake): test registration, checks, and
// the random / special values and ulp distances the kernel tests share. Header-only.
//
//   PHX_TEST(matmul_small_shapes) { ... PHX_CHECK(x == y) << "detail"; ... }
//   int main(int argc, char** argv) { return phoenix::testing::RunAll(argc, argv); }
//
// A test fails when any check fails (each failure prints file:line and the message). A test that
// has nothing to check here calls Skip("reason"); when every test skipped, the binary exits 77
// (CTest's skip code). `binary NAME` runs only the tests whose name contains NAME.
#pragma once

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/bf16.h"
#include "common/cpu_features.h"

namespace phoenix::testing {

struct TestCase {
  const char* name;
  std::function<void()> fn;
};

inline std::vector<TestCase>& Registry() {
  static std::vector<TestCase> tests;
  return tests;
}

struct State {
  int failures = 0;       // failed checks in the current test
  bool skipped = false;   // the current test called Skip
  std::string skip_reason;
};
inline State& Current() {
  static State s;
  return s;
}

struct Register {
  Register(const char* name, std::function<void()> fn) { Registry().push_back({name, std::move(fn)}); }
};

// Collects the message streamed into a failed check and prints it when the check ends.
class Failure {
 public:
  Failure(const char* file, int line, const char* expr) {
    ++Current().failures;
    msg_ << file << ":" << line << ": check failed: " << expr;
  }
  ~Failure() { std::fprintf(stderr, "%s\n", msg_.str().c_str()); }
  template <typename T>
  Failure& operator<<(const T& v) {
    if (!started_) msg_ << ": ";
    started_ = true;
    msg_ << v;
    return *this;
  }

 private:
  std::ostringstream msg_;
  bool started_ = false;
};

inline void Skip(const std::string& reason) {
  Current().skipped = true;
  Current().skip_reason = reason;
}

// A line of context on stdout (shown by ctest --output-on-failure and -V).
inline void Note(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline void Note(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::printf("    ");
  std::vprintf(fmt, ap);
  std::printf("\n");
  va_end(ap);
}

inline int RunAll(int argc, char** argv) {
  // The PHOENIX_KERNEL_ISA=avx2 variant (cmake/PhoenixTests.cmake) repeats the default run on a
  // CPU whose best path is AVX2 anyway: skip it there.
  const char* isa = std::getenv("PHOENIX_KERNEL_ISA");
  if (isa && std::strcmp(isa, "avx2") == 0 && !GetCpuFeatures().avx512bf16) {
    std::printf("this CPU's default path is already AVX2 (no AVX512_BF16): the default run covers it\n");
    return 77;
  }
  const char* only = argc > 1 ? argv[1] : nullptr;
  int failed = 0, passed = 0, skipped = 0;
  for (const TestCase& t : Registry()) {
    if (only && !std::strstr(t.name, only)) continue;
    Current() = State{};
    std::printf("[ RUN  ] %s\n", t.name);
    std::fflush(stdout);
    t.fn();
    if (Current().failures) {
      ++failed;
      std::printf("[ FAIL ] %s (%d failed checks)\n", t.name, Current().failures);
    } else if (Current().skipped) {
      ++skipped;
      std::printf("[ SKIP ] %s: %s\n", t.name, Current().skip_reason.c_str());
    } else {
      ++passed;
      std::printf("[  OK  ] %s\n", t.name);
    }
    std::fflush(stdout);
  }
  std::printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  if (failed) return 1;
  return passed == 0 && skipped > 0 ? 77 : 0;
}

// ---- Values ---------------------------------------------------------------------------------
inline std::mt19937& Rng() {
  static std::mt19937 rng(1234);
  return rng;
}
inline float Normal(float mean = 0.0f, float sd = 1.0f) { return std::normal_distribution<float>(mean, sd)(Rng()); }
inline int UniformInt(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(Rng()); }

// Normal(0, scale) values rounded to BF16, or to BF16x3 (hi + lo pairs).
inline std::vector<bf16_t> RandVec(size_t n, float scale = 1.0f) {
  std::vector<bf16_t> v(n);
  for (auto& x : v) x = F32ToBf16(Normal(0.0f, scale));
  return v;
}
inline std::vector<split_t> RandSplitVec(size_t n, float scale = 1.0f) {
  std::vector<split_t> v(n);
  for (auto& x : v) x.v = RoundSplit(scale * Normal());
  return v;
}
template <typename T> std::vector<T> RandOf(size_t n, float scale = 1.0f);
template <> inline std::vector<bf16_t> RandOf<bf16_t>(size_t n, float scale) { return RandVec(n, scale); }
template <> inline std::vector<split_t> RandOf<split_t>(size_t n, float scale) { return RandSplitVec(n, scale); }

// Random BF16 values with a fraction replaced by NaN, Inf, zeros, denormals and the extremes.
inline std::vector<bf16_t> SpecialVec(size_t n, float scale, double special_frac) {
  std::vector<bf16_t> v = RandVec(n, scale);
  const bf16_t specials[] = {0x7fc0, 0xffc0, 0x7f80, 0xff80, 0x0000, 0x8000, 0x0001, 0x8001, 0x7f7f, 0xff7f, 0x0080};
  std::uniform_real_distribution<double> u(0, 1);
  for (auto& x : v)
    if (u(Rng()) < special_frac) x = specials[Rng()() % (sizeof specials / sizeof specials[0])];
  return v;
}

inline bool IsNan(bf16_t v) { return (v & 0x7fff) > 0x7f80; }
inline bool IsNan(split_t v) { return std::isnan(v.v); }
inline float AsF32(bf16_t v) { return Bf16ToF32(v); }
inline float AsF32(split_t v) { return v.v; }

// Distance in BF16 ulps between two BF16 values (0 for two NaNs, huge for NaN vs number).
inline int64_t UlpDiff(bf16_t x, bf16_t y) {
  if (IsNan(x) || IsNan(y)) return (IsNan(x) && IsNan(y)) ? 0 : int64_t{1} << 20;
  auto key = [](bf16_t v) -> int64_t { return (v & 0x8000) ? -int64_t(v & 0x7fff) : int64_t(v & 0x7fff); };
  return std::llabs(key(x) - key(y));
}
// The BF16 ulp at |v| (2^-133 for denormals, Inf for Inf / NaN).
inline float Bf16Ulp(float v) {
  v = std::fabs(v);
  if (!(v < INFINITY)) return INFINITY;
  int e;
  std::frexp(v, &e);
  return std::ldexp(1.0f, e - 8 > -133 ? e - 8 : -133);
}
// Same bits, or both NaN.
inline bool SameValue(bf16_t x, bf16_t y) { return x == y || (IsNan(x) && IsNan(y)); }
inline bool SameValue(split_t x, split_t y) {
  return std::memcmp(&x, &y, sizeof x) == 0 || (std::isnan(x.v) && std::isnan(y.v));
}

// Element-by-element: max ulp distance (BF16) and the count of bit-identical values.
struct Agreement {
  int64_t exact = 0, count = 0, max_ulp = 0;
};
inline Agreement Compare(const std::vector<bf16_t>& ref, const std::vector<bf16_t>& got) {
  Agreement a;
  a.count = static_cast<int64_t>(ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    const int64_t d = UlpDiff(ref[i], got[i]);
    a.max_ulp = d > a.max_ulp ? d : a.max_ulp;
    a.exact += d == 0;
  }
  return a;
}
inline Agreement Compare(const std::vector<split_t>& ref, const std::vector<split_t>& got) {
  Agreement a;
  a.count = static_cast<int64_t>(ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    if (SameValue(ref[i], got[i])) {
      ++a.exact;
      continue;
    }
    // ulps of the hi + lo pair: 2^-16 relative
    const float r = ref[i].v, g = got[i].v;
    const double scale = std::ldexp(std::fmax(std::fabs(r), std::fabs(g)), -16);
    const int64_t d = std::isfinite(r) && std::isfinite(g) && scale > 0
                          ? static_cast<int64_t>(std::ceil(std::fabs(double(r) - g) / scale))
                          : int64_t{1} << 20;
    a.max_ulp = d > a.max_ulp ? d : a.max_ulp;
  }
  return a;
}

}  // namespace phoenix::testing

#define PHX_TEST_CAT2(a, b) a##b
#define PHX_TEST_CAT(a, b) PHX_TEST_CAT2(a, b)
#define PHX_TEST(name)                                                                         \
  static void PHX_TEST_CAT(phx_test_, name)();                                                 \
  static ::phoenix::testing::Register PHX_TEST_CAT(phx_register_, name)(#name, &PHX_TEST_CAT(phx_test_, name)); \
  static void PHX_TEST_CAT(phx_test_, name)()

// PHX_CHECK(cond) << "context";  (the message is built only when the check fails)
#define PHX_CHECK(cond) \
  if (cond) {           \
  } else                \
    ::phoenix::testing::Failure(__FILE__, __LINE__, #cond)
