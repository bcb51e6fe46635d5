// MatMul (matmul.h) against its portable reference and against a float64 product, at BF16 and
// BF16x3, on every case of the former kernel bench: odd and tiny shapes, transposed views of A,
// B, C and the residual, batched and broadcast B, cached constant B, every epilogue, NaN / Inf.
//
// What "agrees" means depends on the fast path the dispatcher picked on this CPU:
//   * avx2 (FMA over BF16 products where they are exact in FP32, multiply-then-add where not,
//     in the reference's order): the outputs must be bit-identical to portable::MatMul;
//   * avx512_bf16 (vdpbf16ps adds pairs of products): |fast - ref| <= 2 BF16 ulps of the larger
//     + the FP32 summation bound 2 K 2^-24 |alpha| sum_k |a_k b_k| (x1.2 for the GELU slope);
//   NaN positions must match exactly in both.
// The reference itself is checked against float64 on every case (any CPU).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/cpu_features.h"
#include "common/kernel_isa.h"
#include "common/parallel.h"
#include "common/testing.h"
#include "matmul/matmul.h"

using namespace phoenix;
using namespace phoenix::kernels;
using namespace phoenix::testing;

namespace {

const int kThreads = 2;
bool FastIsExact() { return !UseAvx512Bf16() && UseAvx2Fma(); }  // the AVX2 BF16 path
bool HaveFastPath() { return UseAvx2Fma(); }

void Report(const std::string& name, bool ok, const std::string& detail) {
  if (ok) Note("%-58s %s", name.c_str(), detail.c_str());
  PHX_CHECK(ok) << name << "  " << detail;
}

struct MMCase {
  std::string name;
  int64_t batch = 1, M, N, K;
  bool a_trans = false, b_trans = false, c_trans = false, b_const = false, b_bcast = false;
  bool bias = false, residual = false, r_trans = false;
  Epilogue epi = Epilogue::kNone;
  float alpha = 1.0f;
  int special = 0;  // 1: NaN / Inf / huge values injected
};

// The MatMulArgs of a case (the strides of its views); residual and bias are left unset.
MatMulArgs CaseArgs(const MMCase& c) {
  const int64_t B = c.batch, M = c.M, N = c.N, K = c.K;
  MatMulArgs a;
  a.M = M; a.N = N; a.K = K;
  a.batch_rank = 1;
  a.batch_shape[0] = B;
  // A: [B, M, K] stored row-major or as [B, K, M] (transposed view)
  a.a_batch_strides[0] = M * K;
  if (c.a_trans) { a.a_rs = 1; a.a_cs = M; } else { a.a_rs = K; a.a_cs = 1; }
  a.b_batch_strides[0] = c.b_bcast ? 0 : K * N;
  if (c.b_trans) { a.b_rs = 1; a.b_cs = K; } else { a.b_rs = N; a.b_cs = 1; }
  a.c_batch_strides[0] = M * N;
  if (c.c_trans) { a.c_rs = 1; a.c_cs = M; } else { a.c_rs = N; a.c_cs = 1; }
  a.r_batch_strides[0] = M * N;
  if (c.r_trans) { a.r_rs = 1; a.r_cs = M; } else { a.r_rs = N; a.r_cs = 1; }
  a.alpha = c.alpha;
  a.epilogue = c.epi;
  a.b_is_constant = c.b_const;
  return a;
}

// The float64 value of output (b, m, n) before the final rounding (the epilogue in float64 too),
// and sum_k |alpha a_k b_k| for the FP32 summation bound.
template <typename T>
double Truth(const MMCase& c, const MatMulArgs& a, const std::vector<T>& A, const std::vector<T>& Bm,
             const std::vector<T>& R, const std::vector<float>& bias, int64_t b, int64_t m, int64_t n, double* S) {
  double acc = 0;
  *S = 0;
  for (int64_t k = 0; k < c.K; ++k) {
    const double p = double(AsF32(A[b * c.M * c.K + m * a.a_rs + k * a.a_cs])) *
                     AsF32(Bm[(c.b_bcast ? 0 : b * c.K * c.N) + k * a.b_rs + n * a.b_cs]);
    acc += p;
    *S += std::fabs(p);
  }
  *S *= std::fabs(c.alpha);
  double v = acc * c.alpha + (c.bias ? bias[n] : 0.0);
  if (c.epi == Epilogue::kGeluErf) v = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
  if (c.epi == Epilogue::kGeluTanh) v = 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
  if (c.residual) v += AsF32(R[b * c.M * c.N + m * a.r_rs + n * a.r_cs]);
  return v;
}

// One case at element type T (bf16_t or split_t): fast (dispatched) against portable::MatMul,
// and portable::MatMul against float64.
template <typename T>
void TestMatMulAs(const MMCase& c, int threads) {
  constexpr bool kSplit = std::is_same<T, split_t>::value;
  const int64_t B = c.batch, M = c.M, N = c.N, K = c.K;
  std::vector<T> A = RandOf<T>(B * M * K), Bm = RandOf<T>((c.b_bcast ? 1 : B) * K * N), R = RandOf<T>(B * M * N);
  std::vector<float> bias(N);
  for (auto& x : bias) x = Normal();
  auto set = [](T& x, float v) { x = FromF32<T>(v); };
  if (c.special) {
    set(A[0], NAN);                                    // NaN in row 0 of batch 0
    if (K > 1 && M > 1) set(A[K + 1], INFINITY);       // +Inf in row 1
    set(Bm[K * N - 1], -INFINITY);                     // -Inf in B's last element
    if (M > 2) set(A[2 * K], 3e38f);                   // overflow to Inf in the accumulator
    if (K > 2 && M > 3) set(A[3 * K], 0.0f);           // a zero multiplicand next to Inf stays a product
  }
  MatMulArgs a = CaseArgs(c);
  if (c.residual) a.residual = R.data();
  a.bias = c.bias ? bias.data() : nullptr;
  std::vector<T> ref(B * M * N, FromF32<T>(7.0f)), fast(B * M * N, FromF32<T>(-7.0f));
  portable::MatMul(a, A.data(), Bm.data(), ref.data(), threads);
  MatMul(a, A.data(), Bm.data(), fast.data(), threads);
  if (c.b_const) {  // second call: the cached pack gives the same bits
    std::vector<T> again(B * M * N, FromF32<T>(-7.0f));
    MatMul(a, A.data(), Bm.data(), again.data(), threads);
    bool same = true;
    for (size_t i = 0; i < again.size(); ++i) same &= SameValue(again[i], fast[i]);
    PHX_CHECK(same) << c.name << ": second call with the cached B differs";
    ReleasePackedWeights(Bm.data(), Bm.size() * sizeof(T));
  }
  const double rel = kSplit ? std::ldexp(1.0, -16) : std::ldexp(1.0, -8);  // half-ulp of the stored type, x2
  const double terms = kSplit ? 3.0 * K : 1.0 * K;                          // BF16 products per output
  int64_t bad = 0, bad_ref = 0, exact = 0, nan_mismatch = 0;
  double worst = 0, worst_ref = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        const int64_t ci = b * M * N + m * a.c_rs + n * a.c_cs;
        const T r = ref[ci], f = fast[ci];
        const float rf = AsF32(r), ff = AsF32(f);
        double S = 0;
        const double truth = Truth(c, a, A, Bm, R, bias, b, m, n, &S);
        // the reference against float64: its rounding + the FP32 sum bound + the epilogue's FP32 steps
        if (std::isfinite(truth) && std::isfinite(S) && std::isfinite(rf)) {
          const double res = c.residual ? std::fabs(AsF32(R[b * M * N + m * a.r_rs + n * a.r_cs])) : 0.0;
          const double tol = rel * std::fabs(truth) + 1.2 * terms * std::ldexp(1.0, -24) * S * 1.2 +
                             4e-7 * (S + std::fabs(c.bias ? bias[n] : 0.0f) + res) + (kSplit ? 3.0 * std::ldexp(1.0, -16) * S : 0.0);
          const double d = std::fabs(rf - truth);
          if (!(d <= tol)) ++bad_ref;
          if (tol > 0) worst_ref = std::max(worst_ref, d / tol);
        }
        if (SameValue(r, f)) { ++exact; continue; }
        if (IsNan(r) != IsNan(f)) { ++nan_mismatch; ++bad; continue; }
        if (FastIsExact() || !std::isfinite(rf) || !std::isfinite(ff)) { ++bad; continue; }
        const double tol = 2.0 * rel * std::max(std::fabs(rf), std::fabs(ff)) +
                           1.2 * 2.0 * terms * std::ldexp(1.0, -24) * S;
        const double diff = std::fabs(double(rf) - ff);
        if (!(diff <= tol)) ++bad;
        if (tol > 0) worst = std::max(worst, diff / tol);
      }
  char buf[200];
  std::snprintf(buf, sizeof buf, "ref vs f64: worst %.2f of tol", worst_ref);
  Report(std::string("reference ") + (kSplit ? "bf16x3 " : "bf16 ") + c.name, bad_ref == 0, buf);
  if (!HaveFastPath()) return;
  std::snprintf(buf, sizeof buf, "%s vs ref: exact %.1f%%  worst %.2f of tol  nan-mismatch %lld", KernelIsaName(),
                100.0 * exact / (B * M * N), worst, (long long)nan_mismatch);
  Report(std::string("fast ") + (kSplit ? "bf16x3 " : "bf16 ") + c.name, bad == 0, buf);
}

std::vector<MMCase> FixedCases() {
  return {
      {"1x1x1", 1, 1, 1, 1},
      {"1x1x2", 1, 1, 1, 2},
      {"odd 7x5x3", 1, 7, 5, 3},
      {"odd 13x17x9 bias", 1, 13, 17, 9, false, false, false, false, false, true},
      {"M=1 1x100x64", 1, 1, 100, 64},
      {"N=1 37x1x65", 1, 37, 1, 65},
      {"33x47x129 gelu-erf bias alpha", 1, 33, 47, 129, false, false, false, false, false, true, false, false,
       Epilogue::kGeluErf, 0.125f},
      {"25x50x31 gelu-tanh", 1, 25, 50, 31, false, false, false, false, false, false, false, false, Epilogue::kGeluTanh},
      {"residual 29x40x70", 1, 29, 40, 70, false, false, false, false, false, true, true},
      {"residual transposed 29x40x70", 1, 29, 40, 70, false, false, false, false, false, true, true, true},
      {"A transposed 30x33x45", 1, 30, 33, 45, true},
      {"B transposed (K^T) 3x30x70x64", 3, 30, 70, 64, false, true},
      {"B transposed odd K 2x19x21x33", 2, 19, 21, 33, false, true},
      {"C transposed (conv) 50x40x30 bias gelu", 1, 50, 40, 30, false, false, true, true, true, true, false, false,
       Epilogue::kGeluErf},
      {"const B broadcast batch 3x20x48x32", 3, 20, 48, 32, false, false, false, true, true},
      {"const B^T 40x96x24", 1, 40, 96, 24, false, true, false, true},
      {"batched attention-like 4x60x60x64 alpha", 4, 60, 60, 64, false, true, false, false, false, false, false, false,
       Epilogue::kNone, 0.125f},
      {"NaN/Inf 9x33x17", 1, 9, 33, 17, false, false, false, false, false, true, false, false, Epilogue::kNone, 1.0f, 1},
      {"NaN/Inf gelu 9x20x16", 1, 9, 20, 16, false, false, false, false, false, false, false, false, Epilogue::kGeluErf,
       1.0f, 1},
      {"tiny qkv 150x384x1152 const bias", 1, 150, 1152, 384, false, false, false, true, false, true},
      {"ffn2-like 100x512x1536 const bias residual", 1, 100, 512, 1536, false, false, false, true, false, true, true},
  };
}

// Random small cases: every combination of views, epilogues and batching turns up.
std::vector<MMCase> RandomCases(int count) {
  std::vector<MMCase> out;
  for (int i = 0; i < count; ++i) {
    auto d = [] { return UniformInt(1, 70); };
    MMCase c{"random", 1 + d() % 3, d(), d(), d()};
    c.a_trans = d() % 4 == 0;
    c.b_trans = d() % 2 == 0;
    c.c_trans = d() % 5 == 0;
    c.b_const = d() % 2 == 0;
    c.b_bcast = c.b_const && d() % 2 == 0;
    c.bias = d() % 2 == 0;
    c.residual = d() % 3 == 0;
    c.epi = static_cast<Epilogue>(d() % 3);
    c.name = "random " + std::to_string(c.batch) + "x" + std::to_string(c.M) + "x" + std::to_string(c.N) + "x" +
             std::to_string(c.K) + (c.a_trans ? " At" : "") + (c.b_trans ? " Bt" : "") + (c.c_trans ? " Ct" : "") +
             (c.b_const ? " const" : "") + (c.residual ? " res" : "") + (c.epi != Epilogue::kNone ? " gelu" : "");
    out.push_back(c);
  }
  return out;
}

}  // namespace

PHX_TEST(matmul_bf16_fixed_cases) {
  for (const MMCase& c : FixedCases()) TestMatMulAs<bf16_t>(c, kThreads);
}
PHX_TEST(matmul_bf16x3_fixed_cases) {
  for (const MMCase& c : FixedCases()) TestMatMulAs<split_t>(c, kThreads);
}
PHX_TEST(matmul_bf16_random_cases) {
  for (const MMCase& c : RandomCases(25)) TestMatMulAs<bf16_t>(c, kThreads);
}
PHX_TEST(matmul_bf16x3_random_cases) {
  for (const MMCase& c : RandomCases(25)) TestMatMulAs<split_t>(c, kThreads);
}
PHX_TEST(matmul_one_thread_equals_two) {  // the split of the work over threads never changes bits
  for (const MMCase& c : RandomCases(5)) {
    MatMulArgs a = CaseArgs(c);
    const int64_t B = c.batch;
    std::vector<bf16_t> A = RandVec(B * c.M * c.K), Bm = RandVec(B * c.K * c.N), c1(B * c.M * c.N), c2(B * c.M * c.N);
    MatMul(a, A.data(), Bm.data(), c1.data(), 1);
    MatMul(a, A.data(), Bm.data(), c2.data(), 2);
    PHX_CHECK(c1 == c2) << c.name;
    ReleasePackedWeights(Bm.data(), Bm.size() * 2);
  }
}

// The AVX2 tile takes the FMA form only when every product is exact in FP32 (kernel_isa.h
// ProductsExact). Two cases where an FMA would round differently from the reference's
// multiply-then-add, so the dispatched path must see them and take the multiply-then-add form:
//   underflow: a0 b0 = 2^-149 and a1 b1 = 2^-150 (below FP32's range: the multiply rounds it to
//     0, ties to even), so acc = 2^-149, where an FMA would give 2^-148; alpha = 2^100 lifts the
//     difference into BF16's range (2^-49 against 2^-48);
//   overflow: a0 b0 = -1.9921875 x 2^127, then a1 b1 = 2^128 overflows the multiply to +Inf, where
//     an FMA would give the finite 2^120.
PHX_TEST(matmul_products_outside_fp32_range_match_the_reference) {
  struct Case {
    const char* name;
    float a0, a1, b0, b1, alpha, expect;
  };
  const Case cases[] = {
      {"underflow", 0x1p-74f, 0x1p-75f, 0x1p-75f, 0x1p-75f, 0x1p100f, 0x1p-49f},
      {"overflow", -1.9921875f * 0x1p64f, 0x1p64f, 0x1p63f, 0x1p64f, 1.0f, INFINITY},
  };
  for (const Case& c : cases) {
    const int64_t M = 12, N = 32, K = 2;
    MatMulArgs a;
    a.M = M; a.N = N; a.K = K;
    a.a_rs = K; a.b_rs = N; a.c_rs = N;
    a.alpha = c.alpha;
    std::vector<bf16_t> A(M * K), B(K * N), ref(M * N), fast(M * N);
    for (int64_t m = 0; m < M; ++m) A[m * K] = F32ToBf16(c.a0), A[m * K + 1] = F32ToBf16(c.a1);
    for (int64_t n = 0; n < N; ++n) B[n] = F32ToBf16(c.b0), B[N + n] = F32ToBf16(c.b1);
    portable::MatMul(a, A.data(), B.data(), ref.data(), kThreads);
    MatMul(a, A.data(), B.data(), fast.data(), kThreads);
    bool ok = true;
    for (int64_t i = 0; i < M * N; ++i) ok &= AsF32(ref[i]) == c.expect && (!FastIsExact() || fast[i] == ref[i]);
    PHX_CHECK(ok) << c.name << ": reference " << AsF32(ref[0]) << " (expected " << c.expect << "), " << KernelIsaName()
                  << " path " << AsF32(fast[0]);
  }
}

// Several threads calling MatMul at once (several sessions): the pool and the packed-weight
// cache must stay correct.
PHX_TEST(matmul_concurrent_callers) {
  MatMulArgs a;
  a.M = 120; a.N = 256; a.K = 128;
  a.a_rs = 128; a.b_rs = 256; a.c_rs = 256;
  a.b_is_constant = true;
  std::vector<bf16_t> A = RandVec(120 * 128), B = RandVec(128 * 256), ref(120 * 256);
  MatMul(a, A.data(), B.data(), ref.data(), kThreads);
  bool ok = true;
  std::vector<std::thread> ts;
  std::mutex mu;
  const int calls = HaveFastPath() ? 100 : 10;
  for (int t = 0; t < 3; ++t)
    ts.emplace_back([&] {
      std::vector<bf16_t> c(120 * 256);
      for (int i = 0; i < calls; ++i) {
        std::fill(c.begin(), c.end(), 0);
        MatMul(a, A.data(), B.data(), c.data(), kThreads);
        if (c != ref) { std::lock_guard<std::mutex> lk(mu); ok = false; }
      }
    });
  for (auto& t : ts) t.join();
  PHX_CHECK(ok) << "3 threads x " << calls << " concurrent MatMul calls disagree with a lone call";
  ReleasePackedWeights(B.data(), B.size() * 2);
}

int main(int argc, char** argv) {
  std::printf("kernel path: %s\n", KernelIsaName());
  return RunAll(argc, argv);
}
