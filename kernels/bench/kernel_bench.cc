// Standalone correctness + speed harness for the emulated kernels (no ONNX Runtime, no CMake).
// Build and run: kernels/bench/run.sh  (see that script for the flags).
//
// Correctness: every public kernel (which dispatches to the AVX-512 path on this CPU) is compared
// with the portable reference (kernels::portable::*, the lead's scalar forms) on random and
// awkward shapes, including NaN / Inf inputs:
//   * MatMul: FP32 accumulation order differs (vdpbf16ps pairs), so the check is
//     |fast - ref| <= 2 BF16 ulps of the larger of the two + the FP32 summation bound
//     2 * K * 2^-24 * |alpha| * sum_k |a_k b_k| (before GELU, whose slope is <= 1.13);
//     NaN positions must match exactly; also reports the fraction of bit-identical outputs.
//   * GELU, Binary, BinaryScalar, Copy: bit-identical (NaN == NaN).
//   * LayerNorm: bit-identical (sequential sums, one row per lane).
//   * Softmax: <= 1 BF16 ulp (the FP32 row sum is reassociated into 16 lanes).
//   * Attention (fused): the S accumulation order differs (vdpbf16ps pairs) and the softmax sum
//     is reassociated into 16 lanes, so a P value may differ by 1 BF16 ulp (<= 2^-7 relative)
//     now and then; the check on O is |fast - ref| <= 2 BF16 ulps of the larger of the two
//     + (2^-7 + 2 * N * 2^-24) * sum_n |p_n v_n| (the P ulp + the FP32 summation bound of both
//     sides, p from a float64 softmax); NaN positions must match exactly.
// Speed: GFLOP/s of MatMul on the whisper-base encoder shapes (and ms of the other kernels);
// fused attention against the unfused MatMul -> Softmax -> MatMul sequence on the same shapes.
//
// Usage: kernel_bench [--quick] [--threads N] [--no-perf] [--no-test]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <functional>
#include <mutex>
#include <thread>
#include <tuple>
#include <random>
#include <string>
#include <vector>

#include "common/cpu_features.h"
#include "common/kernel_isa.h"
#include "common/parallel.h"
#include "attention/attention.h"
#include "attention/attention_internal.h"

using namespace phoenix;
using namespace phoenix::kernels;

namespace {

int g_failures = 0;
std::mt19937 g_rng(1234);

bf16_t RandBf16(float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  return F32ToBf16(d(g_rng));
}
std::vector<bf16_t> RandVec(size_t n, float scale = 1.0f) {
  std::vector<bf16_t> v(n);
  for (auto& x : v) x = RandBf16(scale);
  return v;
}
// Normal(0, scale) values rounded to BF16x3 (hi + lo pairs).
std::vector<split_t> RandSplitVec(size_t n, float scale = 1.0f) {
  std::vector<split_t> v(n);
  for (auto& x : v) x.v = RoundSplit(scale * std::normal_distribution<float>(0, 1)(g_rng));
  return v;
}
bool IsNan(bf16_t v) { return (v & 0x7fff) > 0x7f80; }
// Distance in BF16 ulps between two finite values of the same sign, else a large number.
int64_t UlpDiff(bf16_t x, bf16_t y) {
  if (IsNan(x) || IsNan(y)) return (IsNan(x) && IsNan(y)) ? 0 : 1 << 20;
  auto key = [](bf16_t v) -> int64_t { return (v & 0x8000) ? -int64_t(v & 0x7fff) : int64_t(v & 0x7fff); };
  return std::llabs(key(x) - key(y));
}
float Ulp(float v) {  // BF16 ulp at |v|
  v = std::fabs(v);
  if (!(v < INFINITY)) return INFINITY;
  int e;
  std::frexp(v, &e);
  return std::ldexp(1.0f, std::max(e - 8, -133));
}

void Report(const std::string& name, bool ok, const std::string& detail) {
  std::printf("  %-58s %s  %s\n", name.c_str(), ok ? "ok  " : "FAIL", detail.c_str());
  if (!ok) ++g_failures;
}

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Median seconds of fn over >= min_reps runs and >= min_time seconds.
double Time(const std::function<void()>& fn, int min_reps = 5, double min_time = 0.8) {
  fn();
  std::vector<double> t;
  const double end = Now() + min_time;
  while (static_cast<int>(t.size()) < min_reps || Now() < end) {
    const double t0 = Now();
    fn();
    t.push_back(Now() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// ---------------------------------------------------------------------------------------------
// MatMul
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

void TestMatMul(const MMCase& c, int threads) {
  const int64_t B = c.batch, M = c.M, N = c.N, K = c.K;
  std::vector<bf16_t> A = RandVec(B * M * K), Bm = RandVec((c.b_bcast ? 1 : B) * K * N), R = RandVec(B * M * N);
  std::vector<float> bias(N);
  for (auto& x : bias) x = std::normal_distribution<float>(0, 1)(g_rng);
  if (c.special) {
    A[0] = 0x7fc0;                 // NaN in row 0 of batch 0
    if (K > 1 && M > 1) A[K + 1] = 0x7f80;  // +Inf in row 1
    Bm[K * N - 1] = 0xff80;        // -Inf in B's last element
    if (M > 2) A[2 * K] = F32ToBf16(3e38f);  // overflow to Inf in the accumulator
    if (K > 2 && M > 3) { A[3 * K] = 0; }   // a zero multiplicand next to Inf stays a product
  }
  MatMulArgs a = CaseArgs(c);
  if (c.residual) a.residual = R.data();
  a.bias = c.bias ? bias.data() : nullptr;
  std::vector<bf16_t> ref(B * M * N, 0x1234), fast(B * M * N, 0x4321);
  portable::MatMul(a, A.data(), Bm.data(), ref.data(), threads);
  MatMul(a, A.data(), Bm.data(), fast.data(), threads);
  if (c.b_const) {  // second call: cached pack
    std::vector<bf16_t> again(B * M * N, 0x4321);
    MatMul(a, A.data(), Bm.data(), again.data(), threads);
    if (again != fast) Report(c.name + " (cached B)", false, "second call differs");
    ReleasePackedWeights(Bm.data(), Bm.size() * 2);
  }
  int64_t bad = 0, exact = 0, max_ulp = 0, nan_mismatch = 0;
  double worst = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        const int64_t ci = b * M * N + m * a.c_rs + n * a.c_cs;
        const bf16_t r = ref[ci], f = fast[ci];
        if (r == f) { ++exact; continue; }
        if (IsNan(r) != IsNan(f)) { ++nan_mismatch; ++bad; continue; }
        if (IsNan(r)) { ++exact; continue; }
        double S = 0;
        for (int64_t k = 0; k < K; ++k) {
          const bf16_t av = A[b * M * K + m * a.a_rs + k * a.a_cs];
          const bf16_t bv = Bm[(c.b_bcast ? 0 : b * K * N) + k * a.b_rs + n * a.b_cs];
          S += std::fabs(double(Bf16ToF32(av)) * Bf16ToF32(bv));
        }
        const float rf = Bf16ToF32(r), ff = Bf16ToF32(f);
        const double tol = 2.0 * Ulp(std::max(std::fabs(rf), std::fabs(ff))) +
                           1.2 * 2.0 * K * std::ldexp(1.0, -24) * std::fabs(c.alpha) * S;
        const double diff = std::fabs(double(rf) - ff);
        max_ulp = std::max(max_ulp, UlpDiff(r, f));
        if (!(diff <= tol)) ++bad;
        if (tol > 0) worst = std::max(worst, diff / tol);
      }
  char buf[200];
  std::snprintf(buf, sizeof buf, "exact %.1f%%  max %lld ulp  worst %.2f of tol  nan-mismatch %lld",
                100.0 * exact / (B * M * N), (long long)max_ulp, worst, (long long)nan_mismatch);
  Report("matmul " + c.name, bad == 0, buf);
}

// BF16x3 (split_t operands, K' = 3K): the AVX-512 path against the portable reference. Both sum
// the same 3K BF16 products in FP32 in different orders, so the bound is the FP32 summation
// error over 3K terms plus 2 ulps of the hi + lo result (2^-16 relative); Inf / NaN must match.
void TestMatMulSplit(const MMCase& c, int threads) {
  const int64_t B = c.batch, M = c.M, N = c.N, K = c.K;
  std::vector<split_t> A = RandSplitVec(B * M * K), Bm = RandSplitVec((c.b_bcast ? 1 : B) * K * N),
                       R = RandSplitVec(B * M * N);
  std::vector<float> bias(N);
  for (auto& x : bias) x = std::normal_distribution<float>(0, 1)(g_rng);
  if (c.special) {
    A[0].v = NAN;
    if (K > 1 && M > 1) A[K + 1].v = INFINITY;
    Bm[K * N - 1].v = -INFINITY;
    for (int64_t k = 0; M > 3 && k < K; ++k) A[3 * K + k].v = 2.0f;  // exact: lo = 0 beside B's Inf
  }
  MatMulArgs a = CaseArgs(c);
  if (c.residual) a.residual = R.data();
  a.bias = c.bias ? bias.data() : nullptr;
  std::vector<split_t> ref(B * M * N, split_t{7.0f}), fast(B * M * N, split_t{-7.0f});
  portable::MatMul(a, A.data(), Bm.data(), ref.data(), threads);
  MatMul(a, A.data(), Bm.data(), fast.data(), threads);
  if (c.b_const) ReleasePackedWeights(Bm.data(), Bm.size() * sizeof(split_t));
  int64_t bad = 0, exact = 0;
  double worst = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        const int64_t ci = b * M * N + m * a.c_rs + n * a.c_cs;
        const float r = ref[ci].v, f = fast[ci].v;
        if (r == f || (std::isnan(r) && std::isnan(f))) { ++exact; continue; }
        if (!std::isfinite(r) || !std::isfinite(f)) { ++bad; continue; }
        double S = 0;
        for (int64_t k = 0; k < K; ++k)
          S += std::fabs(double(A[b * M * K + m * a.a_rs + k * a.a_cs].v) *
                         Bm[(c.b_bcast ? 0 : b * K * N) + k * a.b_rs + n * a.b_cs].v);
        const double tol = 2.0 * std::ldexp(std::max(std::fabs(r), std::fabs(f)), -16) +
                           1.2 * 3.0 * K * std::ldexp(1.0, -24) * std::fabs(c.alpha) * S;
        const double diff = std::fabs(double(r) - f);
        if (!(diff <= tol)) ++bad;
        if (tol > 0) worst = std::max(worst, diff / tol);
      }
  char buf[200];
  std::snprintf(buf, sizeof buf, "exact %.1f%%  worst %.2f of tol", 100.0 * exact / (B * M * N), worst);
  Report("matmul bf16x3 " + c.name, bad == 0, buf);
}

void MatMulTests(bool quick, int threads) {
  std::printf("MatMul: AVX512_BF16 path vs portable reference\n");
  std::vector<MMCase> cases = {
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
  if (!quick) cases.push_back({"base ffn1 300x2048x512 const gelu", 1, 300, 2048, 512, false, false, false, true, false,
                               true, false, false, Epilogue::kGeluErf});
  for (const auto& c : cases) {
    TestMatMul(c, threads);
    TestMatMulSplit(c, threads);
  }
  for (int i = 0; i < (quick ? 10 : 40); ++i) {
    std::uniform_int_distribution<int> d(1, 70);
    MMCase c{"random", 1 + d(g_rng) % 3, d(g_rng), d(g_rng), d(g_rng)};
    c.a_trans = d(g_rng) % 4 == 0;
    c.b_trans = d(g_rng) % 2 == 0;
    c.c_trans = d(g_rng) % 5 == 0;
    c.b_const = d(g_rng) % 2 == 0;
    c.b_bcast = c.b_const && d(g_rng) % 2 == 0;
    c.bias = d(g_rng) % 2 == 0;
    c.residual = d(g_rng) % 3 == 0;
    c.epi = static_cast<Epilogue>(d(g_rng) % 3);
    c.name = "random " + std::to_string(c.batch) + "x" + std::to_string(c.M) + "x" + std::to_string(c.N) + "x" +
             std::to_string(c.K) + (c.a_trans ? " At" : "") + (c.b_trans ? " Bt" : "") + (c.c_trans ? " Ct" : "") +
             (c.b_const ? " const" : "") + (c.residual ? " res" : "") + (c.epi != Epilogue::kNone ? " gelu" : "");
    TestMatMul(c, threads);
    TestMatMulSplit(c, threads);
  }
}

// ---------------------------------------------------------------------------------------------
// MatMul speed on the whisper-base encoder shapes (T = 1500, D = 512, 8 heads of 64, FFN 2048).
struct PerfShape {
  const char* name;
  int64_t batch, M, N, K;
  bool attention_qk, attention_av;
};

const char* g_only = nullptr;  // --only NAME: run just the perf shapes whose name contains NAME
bool Want(const char* name) { return !g_only || std::strstr(name, g_only); }

void MatMulPerf(int threads) {
  std::printf("\nMatMul speed, %d threads (BF16 in/out, FP32 accumulation)\n", threads);
  const int64_t T = 1500, D = 512, H = 8, Dh = 64, F = 2048;
  std::vector<bf16_t> x = RandVec(T * F), w = RandVec(F * 3 * D), y(T * F * 4), qkv = RandVec(T * 3 * D),
                      probs = RandVec(H * T * T, 0.02f), out(H * T * T);
  std::vector<float> bias(F * 2, 0.1f);
  double total_s = 0, total_flop = 0;
  auto run_linear = [&](const char* name, int64_t K, int64_t N, Epilogue e, bool residual) {
    MatMulArgs a;
    a.M = T; a.N = N; a.K = K;
    a.a_rs = K; a.b_rs = N; a.c_rs = N;
    a.bias = bias.data();
    a.epilogue = e;
    a.b_is_constant = true;
    if (residual) { a.residual = qkv.data(); a.r_rs = N; }
    if (!Want(name)) return;
    const double t = Time([&] { MatMul(a, x.data(), w.data(), y.data(), threads); });
    const double flop = 2.0 * T * N * K;
    std::printf("  %-34s %7.1f GFLOP/s  %7.3f ms\n", name, flop / t / 1e9, t * 1e3);
    total_s += t; total_flop += flop;
  };
  run_linear("qkv_1500x512x1536 (+bias)", D, 3 * D, Epilogue::kNone, false);
  run_linear("out_1500x512x512 (+bias+res)", D, D, Epilogue::kNone, true);
  run_linear("ffn1_1500x512x2048 (+bias+gelu)", D, F, Epilogue::kGeluErf, false);
  run_linear("ffn2_1500x2048x512 (+bias+res)", F, D, Epilogue::kNone, true);
  if (Want("qkT")) {  // scores[h] = Q_h K_h^T * 1/8, Q/K read in place from the fused QKV [T, 3D]
    MatMulArgs a;
    a.M = T; a.N = T; a.K = Dh;
    a.batch_rank = 1; a.batch_shape[0] = H;
    a.a_batch_strides[0] = Dh; a.a_rs = 3 * D; a.a_cs = 1;
    a.b_batch_strides[0] = Dh; a.b_rs = 1; a.b_cs = 3 * D;  // K^T view
    a.c_batch_strides[0] = T * T; a.c_rs = T; a.c_cs = 1;
    a.alpha = 0.125f;
    const double t = Time([&] { MatMul(a, qkv.data(), qkv.data() + D, out.data(), threads); });
    const double flop = 2.0 * H * T * T * Dh;
    std::printf("  %-34s %7.1f GFLOP/s  %7.3f ms\n", "qkT_8x1500x64x1500 (K^T view)", flop / t / 1e9, t * 1e3);
    total_s += t; total_flop += flop;
  }
  if (Want("av_")) {  // ctx[:, h] = P_h V_h, V read in place from QKV, output written as [T, H, Dh]
    MatMulArgs a;
    a.M = T; a.N = Dh; a.K = T;
    a.batch_rank = 1; a.batch_shape[0] = H;
    a.a_batch_strides[0] = T * T; a.a_rs = T; a.a_cs = 1;
    a.b_batch_strides[0] = Dh; a.b_rs = 3 * D; a.b_cs = 1;
    a.c_batch_strides[0] = Dh; a.c_rs = D; a.c_cs = 1;
    const double t = Time([&] { MatMul(a, probs.data(), qkv.data() + 2 * D, y.data(), threads); });
    const double flop = 2.0 * H * T * T * Dh;
    std::printf("  %-34s %7.1f GFLOP/s  %7.3f ms\n", "av_8x1500x1500x64 (V view)", flop / t / 1e9, t * 1e3);
    total_s += t; total_flop += flop;
  }
  if (total_s > 0) std::printf("  %-34s %7.1f GFLOP/s  %7.3f ms per layer -> %.1f ms for 6 layers\n", "all matmuls of one layer",
              total_flop / total_s / 1e9, total_s * 1e3, 6 * total_s * 1e3);
}

// ---------------------------------------------------------------------------------------------
// Row kernels and elementwise ops
std::vector<bf16_t> SpecialVec(size_t n, float scale, double special_frac) {
  std::vector<bf16_t> v = RandVec(n, scale);
  const bf16_t specials[] = {0x7fc0, 0xffc0, 0x7f80, 0xff80, 0x0000, 0x8000, 0x0001, 0x8001, 0x7f7f, 0xff7f, 0x0080};
  std::uniform_real_distribution<double> u(0, 1);
  for (auto& x : v)
    if (u(g_rng) < special_frac) x = specials[g_rng() % (sizeof specials / sizeof specials[0])];
  return v;
}

void Compare(const std::string& name, const std::vector<bf16_t>& ref, const std::vector<bf16_t>& fast, int64_t allowed_ulp) {
  int64_t max_ulp = 0, exact = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const int64_t d = UlpDiff(ref[i], fast[i]);
    max_ulp = std::max(max_ulp, d);
    exact += d == 0;
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "exact %.3f%%  max %lld ulp (allowed %lld)", 100.0 * exact / std::max<size_t>(1, ref.size()),
                (long long)max_ulp, (long long)allowed_ulp);
  Report(name, max_ulp <= allowed_ulp, buf);
}

void RowKernelTests(int threads) {
  std::printf("\nGELU / Softmax / LayerNorm / elementwise: AVX-512 path vs portable reference\n");
  {  // GELU over every BF16 value, both modes: bit-identical
    std::vector<bf16_t> x(65536), r(65536), f(65536);
    for (int i = 0; i < 65536; ++i) x[i] = static_cast<bf16_t>(i);
    for (GeluMode mode : {GeluMode::kErf, GeluMode::kTanh}) {
      portable::Gelu(mode, 65536, x.data(), r.data(), threads);
      Gelu(mode, 65536, x.data(), f.data(), threads);
      Compare(std::string("gelu ") + (mode == GeluMode::kErf ? "erf" : "tanh") + " all 65536 bf16 inputs", r, f, 0);
      for (int64_t n : {1, 15, 17, 1000}) {
        std::fill(f.begin(), f.end(), 0);
        std::fill(r.begin(), r.end(), 0);
        portable::Gelu(mode, n, x.data() + 16000, r.data(), threads);
        Gelu(mode, n, x.data() + 16000, f.data(), threads);
        Compare("gelu n=" + std::to_string(n), r, f, 0);
      }
    }
  }
  for (auto [rows, cols, scale, special] : std::vector<std::tuple<int64_t, int64_t, float, double>>{
           {1, 1, 1.0f, 0}, {3, 17, 1.0f, 0}, {200, 1500, 0.125f, 0}, {64, 1500, 1.0f, 0.001}, {7, 5000, 1.0f, 0},
           {40, 64, 8.0f, 0}, {30, 33, 1.0f, 0.05}}) {
    SoftmaxArgs a;
    a.rows = rows; a.cols = cols; a.scale = scale;
    std::vector<bf16_t> x = SpecialVec(rows * cols, 3.0f, special), r(rows * cols), f(rows * cols);
    if (rows > 2) for (int64_t i = 0; i < cols; ++i) x[2 * cols + i] = 0xff80;  // an all -Inf row
    portable::Softmax(a, x.data(), r.data(), threads);
    Softmax(a, x.data(), f.data(), threads);
    char name[96];
    std::snprintf(name, sizeof name, "softmax %lldx%lld scale %g specials %g", (long long)rows, (long long)cols, scale, special);
    Compare(name, r, f, 1);
  }
  for (auto [rows, cols, beta, special] : std::vector<std::tuple<int64_t, int64_t, bool, double>>{
           {1, 1, true, 0}, {5, 17, false, 0}, {300, 512, true, 0}, {100, 384, true, 0}, {20, 1000, true, 0.01},
           {9, 2048, false, 0}}) {
    LayerNormArgs a;
    a.rows = rows; a.cols = cols;
    std::vector<float> g(cols), b(cols);
    for (auto& v : g) v = std::normal_distribution<float>(1, 0.2f)(g_rng);
    for (auto& v : b) v = std::normal_distribution<float>(0, 0.2f)(g_rng);
    a.gamma = g.data();
    a.beta = beta ? b.data() : nullptr;
    std::vector<bf16_t> x = SpecialVec(rows * cols, 2.0f, special), r(rows * cols), f(rows * cols);
    for (int64_t i = 0; i < rows * cols; ++i) x[i] = F32ToBf16(Bf16ToF32(x[i]) + 3.0f);  // offset mean
    portable::LayerNorm(a, x.data(), r.data(), threads);
    LayerNorm(a, x.data(), f.data(), threads);
    char name[96];
    std::snprintf(name, sizeof name, "layernorm %lldx%lld%s specials %g", (long long)rows, (long long)cols, beta ? " beta" : "", special);
    Compare(name, r, f, 0);
  }
  // Binary with broadcasting patterns (y shape [4, 37, 50]): all ops, bit-identical.
  struct BPat { const char* name; std::vector<int64_t> ashape, bshape; bool transpose_a; };
  const std::vector<BPat> pats = {
      {"contiguous", {4, 37, 50}, {4, 37, 50}, false},
      {"bias along last dim", {4, 37, 50}, {50}, false},
      {"broadcast last dim ([...,1])", {4, 37, 50}, {4, 37, 1}, false},
      {"scalar tensor", {4, 37, 50}, {}, false},
      {"middle broadcast", {4, 37, 50}, {4, 1, 50}, false},
      {"transposed a", {4, 37, 50}, {4, 37, 50}, true},
      {"short rows [4,37,3]", {4, 37, 3}, {4, 37, 3}, false},
  };
  for (const auto& pat : pats)
    for (BinaryOp op : {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul, BinaryOp::kDiv}) {
      std::vector<int64_t> yshape = pat.ashape;
      TensorView yv = TensorView::Contiguous(yshape);
      TensorView av = TensorView::Contiguous(pat.ashape);
      if (pat.transpose_a) {  // a stored as [50, 37, 4], read permuted
        TensorView t = TensorView::Contiguous({yshape[2], yshape[1], yshape[0]});
        for (int d = 0; d < 3; ++d) { av.shape[d] = t.shape[2 - d]; av.strides[d] = t.strides[2 - d]; }
      }
      TensorView bv = yv;  // broadcast b to y's shape with zero strides
      {
        TensorView bc = TensorView::Contiguous(pat.bshape);
        const int off = yv.rank - bc.rank;
        for (int d = 0; d < yv.rank; ++d) {
          const int bd = d - off;
          bv.strides[d] = (bd < 0 || bc.shape[bd] == 1) ? 0 : bc.strides[bd];
        }
      }
      std::vector<bf16_t> A = SpecialVec(av.Extent() + 3, 2.0f, 0.02), B = SpecialVec(bv.Extent() + 3, 2.0f, 0.02);
      av.offset = 1; bv.offset = 2;  // views with offsets
      std::vector<bf16_t> r(yv.NumElements()), f(yv.NumElements());
      portable::Binary(op, A.data(), av, B.data(), bv, r.data(), yv, threads);
      Binary(op, A.data(), av, B.data(), bv, f.data(), yv, threads);
      Compare(std::string("binary op") + std::to_string(int(op)) + " " + pat.name, r, f, 0);
      for (bool first : {false, true}) {
        portable::BinaryScalar(op, A.data(), av, 0.7071f, first, r.data(), yv, threads);
        BinaryScalar(op, A.data(), av, 0.7071f, first, f.data(), yv, threads);
        Compare(std::string("binary-scalar op") + std::to_string(int(op)) + (first ? " s-first " : " ") + pat.name, r, f, 0);
      }
    }
  {  // big contiguous add (threaded split of one long row)
    const int64_t n = 1500 * 512 + 7;
    std::vector<bf16_t> A = RandVec(n), B = RandVec(n), r(n), f(n);
    TensorView v = TensorView::Contiguous({n});
    portable::Binary(BinaryOp::kAdd, A.data(), v, B.data(), v, r.data(), v, threads);
    Binary(BinaryOp::kAdd, A.data(), v, B.data(), v, f.data(), v, threads);
    Compare("binary add one long row", r, f, 0);
  }
  // Copy: head split / merge transposes and a true transpose
  struct CPat { const char* name; std::vector<int64_t> src; std::vector<int> perm; };
  for (const CPat& c : std::vector<CPat>{{"[T,H,Dh] -> [H,T,Dh]", {150, 8, 64}, {1, 0, 2}},
                                         {"[H,T,Dh] -> [T,H,Dh]", {8, 150, 64}, {1, 0, 2}},
                                         {"K^T [H,T,Dh] -> [H,Dh,T]", {8, 150, 64}, {0, 2, 1}},
                                         {"2-D transpose 77x45", {77, 45}, {1, 0}},
                                         {"[B,C,L] -> [B,L,C] odd", {3, 13, 29}, {0, 2, 1}},
                                         {"contiguous", {5, 7, 300}, {0, 1, 2}},
                                         {"[a,b,c,d] perm 2,0,3,1", {3, 5, 7, 11}, {2, 0, 3, 1}}}) {
    TensorView s = TensorView::Contiguous(c.src);
    TensorView xv;
    xv.rank = s.rank;
    for (int d = 0; d < s.rank; ++d) { xv.shape[d] = s.shape[c.perm[d]]; xv.strides[d] = s.strides[c.perm[d]]; }
    TensorView yv = TensorView::Contiguous(xv.Dims());
    std::vector<bf16_t> X = RandVec(s.NumElements()), r(yv.NumElements()), f(yv.NumElements());
    portable::Copy(X.data(), xv, r.data(), yv, threads);
    Copy(X.data(), xv, f.data(), yv, threads);
    Compare(std::string("copy ") + c.name, r, f, 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Fused attention
struct AttCase {
  std::string name;
  int64_t H, M, N, D, Dv;
  int layout = 0;     // 0: contiguous [H, M, D]; 1: Whisper heads [T, H, Dh] (row stride H * Dh);
                      // 2: transposed views (Q [H, D, M], K^T stored [H, D, N], V [H, Dv, N], O [H, Dv, M])
  float scale = 0.125f;
  int special = 0;    // 1: NaN / Inf injected
  bool k_bcast = false;  // batch_rank 2 [2, H/2], K and V shared by the first batch dim
  float mag = 1.0f;   // magnitude of Q and K
};

// A case's AttentionArgs (strides and batch layout) and the per-head base offsets.
struct AttLayout {
  AttentionArgs a;
  std::vector<int64_t> qb, kb, vb, ob;
  int64_t qsz, ksz, vsz, osz;
};

AttLayout MakeAttLayout(const AttCase& c) {
  const int64_t H = c.H, M = c.M, N = c.N, D = c.D, Dv = c.Dv;
  AttentionArgs a;
  a.M = M; a.N = N; a.D = D; a.Dv = Dv;
  a.scale = c.scale;
  // Per-head base offsets (q, k, v, o) and the strides.
  std::vector<int64_t> qb(H), kb(H), vb(H), ob(H);
  for (int64_t h = 0; h < H; ++h) {
    if (c.layout == 1) { qb[h] = h * D; kb[h] = h * D; vb[h] = h * Dv; ob[h] = h * Dv; }
    else { qb[h] = h * M * D; kb[h] = h * N * D; vb[h] = h * N * Dv; ob[h] = h * M * Dv; }
  }
  if (c.k_bcast) for (int64_t h = 0; h < H; ++h) { kb[h] = kb[h % (H / 2)]; vb[h] = vb[h % (H / 2)]; }
  if (c.layout == 1) { a.q_rs = H * D; a.k_rs = H * D; a.v_rs = H * Dv; a.o_rs = H * Dv; }
  else if (c.layout == 0) { a.q_rs = D; a.k_rs = D; a.v_rs = Dv; a.o_rs = Dv; }
  else { a.q_rs = 1; a.q_cs = M; a.k_rs = 1; a.k_cs = N; a.v_rs = 1; a.v_cs = N; a.o_rs = 1; a.o_cs = M; }
  if (c.k_bcast) {
    a.batch_rank = 2; a.batch_shape[0] = 2; a.batch_shape[1] = H / 2;
    a.q_batch_strides[0] = qb[H / 2] - qb[0]; a.q_batch_strides[1] = H > 2 ? qb[1] - qb[0] : 0;
    a.k_batch_strides[0] = 0; a.k_batch_strides[1] = H > 2 ? kb[1] - kb[0] : 0;
    a.v_batch_strides[0] = 0; a.v_batch_strides[1] = H > 2 ? vb[1] - vb[0] : 0;
    a.o_batch_strides[0] = ob[H / 2] - ob[0]; a.o_batch_strides[1] = H > 2 ? ob[1] - ob[0] : 0;
  } else {
    a.batch_rank = 1; a.batch_shape[0] = H;
    a.q_batch_strides[0] = H > 1 ? qb[1] : 0; a.k_batch_strides[0] = H > 1 ? kb[1] : 0;
    a.v_batch_strides[0] = H > 1 ? vb[1] : 0; a.o_batch_strides[0] = H > 1 ? ob[1] : 0;
  }
  return {a, qb, kb, vb, ob, H * M * D, H * N * D, H * N * Dv, H * M * Dv};
}

void TestAttention(const AttCase& c, int threads) {
  const int64_t H = c.H, M = c.M, N = c.N, D = c.D, Dv = c.Dv;
  const AttLayout L = MakeAttLayout(c);
  const AttentionArgs& a = L.a;
  const std::vector<int64_t>&qb = L.qb, &kb = L.kb, &vb = L.vb, &ob = L.ob;
  const int64_t qsz = L.qsz, ksz = L.ksz, vsz = L.vsz, osz = L.osz;
  std::vector<bf16_t> Q = RandVec(qsz, c.mag), K = RandVec(ksz, c.mag), V = RandVec(vsz);
  auto qi = [&](int64_t h, int64_t m, int64_t d) { return qb[h] + m * a.q_rs + d * a.q_cs; };
  auto ki = [&](int64_t h, int64_t n, int64_t d) { return kb[h] + n * a.k_rs + d * a.k_cs; };
  auto vi = [&](int64_t h, int64_t n, int64_t j) { return vb[h] + n * a.v_rs + j * a.v_cs; };
  auto oi = [&](int64_t h, int64_t m, int64_t j) { return ob[h] + m * a.o_rs + j * a.o_cs; };
  if (c.special) {
    Q[qi(0, 0, D - 1)] = 0x7fc0;                         // NaN in query row 0 of head 0
    if (M > 2) Q[qi(0, 2, 0)] = 0x7f80;                  // +Inf in query row 2: Inf / NaN scores
    if (H > 1 && N > 1) K[ki(1, N - 1, 0)] = 0xff80;     // -Inf in a key of head 1
    if (H > 1 && M > 1) for (int64_t d = 0; d < D; ++d) Q[qi(1, M - 1, d)] = F32ToBf16(3e38f);  // overflow
    if (H > 2) V[vi(2, N / 2, Dv / 2)] = 0x7fc0;         // NaN in V: that column of head 2
  }
  std::vector<bf16_t> ref(osz, 0x1234), fast(osz, 0x4321);
  portable::Attention(a, Q.data(), K.data(), V.data(), ref.data(), threads);
  Attention(a, Q.data(), K.data(), V.data(), fast.data(), threads);
  int64_t bad = 0, exact = 0, max_ulp = 0, nan_mismatch = 0, count = 0, nans = 0;
  double worst = 0, err_f = 0, err_r = 0, truth2 = 0;  // squared errors against a float64 attention
  std::vector<double> s(N), p(N);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t m = 0; m < M; ++m) {
      double mx = -INFINITY, sum = 0;  // float64 softmax of the row: the bound's p and the truth
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (int64_t d = 0; d < D; ++d) acc += double(Bf16ToF32(Q[qi(h, m, d)])) * Bf16ToF32(K[ki(h, n, d)]);
        s[n] = c.scale * acc;
        mx = std::max(mx, s[n]);
      }
      for (int64_t n = 0; n < N; ++n) sum += (p[n] = std::exp(s[n] - mx));
      for (int64_t n = 0; n < N; ++n) p[n] /= sum;
      for (int64_t j = 0; j < Dv; ++j) {
        ++count;
        const bf16_t r = ref[oi(h, m, j)], f = fast[oi(h, m, j)];
        nans += IsNan(r);
        double S = 0, truth = 0;
        for (int64_t n = 0; n < N; ++n) {
          const double pv = p[n] * Bf16ToF32(V[vi(h, n, j)]);
          S += std::fabs(pv);
          truth += pv;
        }
        const float rf = Bf16ToF32(r), ff = Bf16ToF32(f);
        if (std::isfinite(truth) && std::isfinite(rf) && std::isfinite(ff)) {
          truth2 += truth * truth;
          err_r += (rf - truth) * (rf - truth);
          err_f += (ff - truth) * (ff - truth);
        }
        if (r == f) { ++exact; continue; }
        if (IsNan(r) != IsNan(f)) { ++nan_mismatch; ++bad; continue; }
        if (IsNan(r)) { ++exact; continue; }
        const double tol = 2.0 * Ulp(std::max(std::fabs(rf), std::fabs(ff))) +
                           (std::ldexp(1.0, -7) + 2.0 * N * std::ldexp(1.0, -24)) * S;
        const double diff = std::fabs(double(rf) - ff);
        max_ulp = std::max(max_ulp, UlpDiff(r, f));
        if (!(diff <= tol)) ++bad;
        if (tol > 0) worst = std::max(worst, diff / tol);
      }
    }
  char buf[260];
  std::snprintf(buf, sizeof buf,
                "exact %.1f%%  max %lld ulp  worst %.2f of tol  nan-mismatch %lld  rel-L2 vs f64: ref %.1e fast %.1e%s",
                100.0 * exact / std::max<int64_t>(1, count), (long long)max_ulp, worst, (long long)nan_mismatch,
                truth2 > 0 ? std::sqrt(err_r / truth2) : 0.0, truth2 > 0 ? std::sqrt(err_f / truth2) : 0.0,
                nans ? ("  (" + std::to_string(nans) + " NaN outputs)").c_str() : "");
  Report("attention " + c.name, bad == 0, buf);
}

// BF16x3 attention (split_t operands): the AVX-512 path against the portable reference, and both
// against a float64 attention of the same (hi + lo) inputs. S differs between the two in its last
// FP32 bits, which moves a P pair by one hi + lo ulp (2^-16 relative) now and then.
void TestAttentionSplit(const AttCase& c, int threads) {
  const AttLayout L = MakeAttLayout(c);
  const AttentionArgs& a = L.a;
  const int64_t H = c.H, M = c.M, N = c.N, D = c.D, Dv = c.Dv;
  std::vector<split_t> Q = RandSplitVec(L.qsz, c.mag), K = RandSplitVec(L.ksz, c.mag), V = RandSplitVec(L.vsz);
  auto qi = [&](int64_t h, int64_t m, int64_t d) { return L.qb[h] + m * a.q_rs + d * a.q_cs; };
  auto ki = [&](int64_t h, int64_t n, int64_t d) { return L.kb[h] + n * a.k_rs + d * a.k_cs; };
  auto vi = [&](int64_t h, int64_t n, int64_t j) { return L.vb[h] + n * a.v_rs + j * a.v_cs; };
  auto oi = [&](int64_t h, int64_t m, int64_t j) { return L.ob[h] + m * a.o_rs + j * a.o_cs; };
  if (c.special) {
    Q[qi(0, 0, D - 1)].v = NAN;
    if (H > 1 && N > 1) K[ki(1, N - 1, 0)].v = -INFINITY;
    if (H > 2) V[vi(2, N / 2, Dv / 2)].v = INFINITY;
  }
  std::vector<split_t> ref(L.osz, split_t{7.0f}), fast(L.osz, split_t{-7.0f});
  portable::Attention(a, Q.data(), K.data(), V.data(), ref.data(), threads);
  Attention(a, Q.data(), K.data(), V.data(), fast.data(), threads);
  int64_t bad = 0, exact = 0, count = 0;
  double worst = 0, err_f = 0, truth2 = 0;
  std::vector<double> s(N), p(N);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t m = 0; m < M; ++m) {
      double mx = -INFINITY, sum = 0;
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (int64_t d = 0; d < D; ++d) acc += double(Q[qi(h, m, d)].v) * K[ki(h, n, d)].v;
        mx = std::max(mx, s[n] = c.scale * acc);
      }
      for (int64_t n = 0; n < N; ++n) sum += (p[n] = std::exp(s[n] - mx));
      for (int64_t j = 0; j < Dv; ++j) {
        ++count;
        const float r = ref[oi(h, m, j)].v, f = fast[oi(h, m, j)].v;
        double S = 0, truth = 0;
        for (int64_t n = 0; n < N; ++n) {
          const double pv = p[n] / sum * V[vi(h, n, j)].v;
          S += std::fabs(pv);
          truth += pv;
        }
        if (std::isfinite(truth) && std::isfinite(f)) {
          truth2 += truth * truth;
          err_f += (f - truth) * (f - truth);
        }
        if (r == f || (std::isnan(r) && std::isnan(f))) { ++exact; continue; }
        if (!std::isfinite(r) || !std::isfinite(f)) { ++bad; continue; }
        const double tol = 2.0 * std::ldexp(std::max(std::fabs(r), std::fabs(f)), -16) +
                           (std::ldexp(1.0, -15) + 6.0 * N * std::ldexp(1.0, -24)) * S;
        const double diff = std::fabs(double(r) - f);
        if (!(diff <= tol)) ++bad;
        if (tol > 0) worst = std::max(worst, diff / tol);
      }
    }
  const double rel = truth2 > 0 ? std::sqrt(err_f / truth2) : 0.0;
  if (rel > 1e-4) ++bad;  // FP32-grade: a path that quietly kept BF16 somewhere fails here
  char buf[200];
  std::snprintf(buf, sizeof buf, "exact %.1f%%  worst %.2f of tol  rel-L2 vs f64 %.1e",
                100.0 * exact / std::max<int64_t>(1, count), worst, rel);
  Report("attention bf16x3 " + c.name, bad == 0, buf);
}

void AttentionTests(bool quick, int threads) {
  std::printf("\nAttention (fused): AVX512_BF16 path vs portable reference\n");
  std::vector<AttCase> cases = {
      {"1x1x1x1x1", 1, 1, 1, 1, 1},
      {"1x1x2x2x1", 1, 1, 2, 2, 1, 0, 1.0f},
      {"M=1 2x1x1500x64 whisper strides", 2, 1, 1500, 64, 64, 1},
      {"N=1 3x37x1x64", 3, 37, 1, 64, 64},
      {"odd 3x13x17x7x5", 3, 13, 17, 7, 5, 0, 0.3f},
      {"odd D 2x29x100x33x70", 2, 29, 100, 33, 70},
      {"N not /16 4x50x47x64x64 whisper strides", 4, 50, 47, 64, 64, 1},
      {"Dv 130 (3 column groups) 2x19x90x64x130", 2, 19, 90, 64, 130},
      {"transposed views 3x31x77x64x64", 3, 31, 77, 64, 64, 2},
      {"transposed views odd 2x14x33x9x11", 2, 14, 33, 9, 11, 2},
      {"K/V broadcast, batch rank 2, 4x40x60x64x64", 4, 40, 60, 64, 64, 0, 0.125f, 0, true},
      {"peaked (scale 4, |q|,|k| ~ 3) 2x40x200x64x64", 2, 40, 200, 64, 64, 1, 4.0f, 0, false, 3.0f},
      {"NaN/Inf 4x9x40x16x16", 4, 9, 40, 16, 16, 0, 0.25f, 1},
      {"NaN/Inf whisper strides 3x30x70x64x64", 3, 30, 70, 64, 64, 1, 0.125f, 1},
      {"tiny-like 6x300x300x64 whisper strides", 6, 300, 300, 64, 64, 1},
  };
  if (!quick) cases.push_back({"whisper-base 8x1500x1500x64 (full)", 8, 1500, 1500, 64, 64, 1});
  for (const auto& c : cases) {
    TestAttention(c, threads);
    TestAttentionSplit(c, threads);
  }
  for (int i = 0; i < (quick ? 8 : 30); ++i) {
    std::uniform_int_distribution<int> d(1, 90);
    AttCase c{"random", 1 + d(g_rng) % 4, d(g_rng), d(g_rng), 1 + d(g_rng) % 70, 1 + d(g_rng) % 70};
    c.layout = d(g_rng) % 3;
    c.scale = 0.05f + 0.01f * d(g_rng);
    c.name = "random " + std::to_string(c.H) + "x" + std::to_string(c.M) + "x" + std::to_string(c.N) + "x" +
             std::to_string(c.D) + "x" + std::to_string(c.Dv) + " layout " + std::to_string(c.layout);
    TestAttention(c, threads);
    TestAttentionSplit(c, threads);
  }
}

// Fused attention against the unfused sequence of today's plan (MatMul Q K^T with alpha = scale
// -> BF16 scores [H, T, T] -> Softmax -> BF16 P -> MatMul P V), on whisper shapes with Q, K, V
// read in place from [T, H * 64] buffers and O written as [T, H, 64].
void AttentionPerf(int threads) {
  std::printf("\nAttention, %d threads: fused kernel vs unfused MatMul -> Softmax -> MatMul (same run)\n", threads);
  for (auto [label, H] : std::vector<std::pair<const char*, int64_t>>{{"base", 8}, {"tiny", 6}}) {
    if (!Want(label) && !Want("attention")) continue;
    const int64_t T = 1500, Dh = 64, Dm = H * Dh;
    std::vector<bf16_t> Q = RandVec(T * Dm), K = RandVec(T * Dm), V = RandVec(T * Dm), O(T * Dm), O2(T * Dm);
    std::vector<bf16_t> scores(H * T * T), probs(H * T * T);
    AttentionArgs aa;
    aa.M = T; aa.N = T; aa.D = Dh; aa.Dv = Dh;
    aa.batch_rank = 1; aa.batch_shape[0] = H;
    aa.q_batch_strides[0] = aa.k_batch_strides[0] = aa.v_batch_strides[0] = aa.o_batch_strides[0] = Dh;
    aa.q_rs = aa.k_rs = aa.v_rs = aa.o_rs = Dm;
    aa.scale = 0.125f;
    MatMulArgs qk;
    qk.M = T; qk.N = T; qk.K = Dh;
    qk.batch_rank = 1; qk.batch_shape[0] = H;
    qk.a_batch_strides[0] = Dh; qk.a_rs = Dm; qk.a_cs = 1;
    qk.b_batch_strides[0] = Dh; qk.b_rs = 1; qk.b_cs = Dm;  // K^T view
    qk.c_batch_strides[0] = T * T; qk.c_rs = T; qk.c_cs = 1;
    qk.alpha = 0.125f;
    SoftmaxArgs sm;
    sm.rows = H * T; sm.cols = T; sm.scale = 1.0f;
    MatMulArgs pv;
    pv.M = T; pv.N = Dh; pv.K = T;
    pv.batch_rank = 1; pv.batch_shape[0] = H;
    pv.a_batch_strides[0] = T * T; pv.a_rs = T; pv.a_cs = 1;
    pv.b_batch_strides[0] = Dh; pv.b_rs = Dm; pv.b_cs = 1;
    pv.c_batch_strides[0] = Dh; pv.c_rs = Dm; pv.c_cs = 1;
    const double flop = 2.0 * H * T * T * (Dh + Dh);
    // Interleave the two so that machine noise hits both alike; median of each.
    const double t_f = Time([&] { Attention(aa, Q.data(), K.data(), V.data(), O.data(), threads); });
    const double t_qk = Time([&] { MatMul(qk, Q.data(), K.data(), scores.data(), threads); }, 5, 0.4);
    const double t_sm = Time([&] { Softmax(sm, scores.data(), probs.data(), threads); }, 5, 0.4);
    const double t_pv = Time([&] { MatMul(pv, probs.data(), V.data(), O2.data(), threads); }, 5, 0.4);
    const double t_u = t_qk + t_sm + t_pv;
    const double t_f2 = Time([&] { Attention(aa, Q.data(), K.data(), V.data(), O.data(), threads); });
    const double tf = std::min(t_f, t_f2);
    const double mb = H * T * T * 2.0 / 1e6;
    std::printf("  %s %lldx%lldx%lldx%lld:\n", label, (long long)H, (long long)T, (long long)T, (long long)Dh);
    std::printf("    unfused: qkT %7.3f ms + softmax %7.3f ms + pv %7.3f ms = %7.3f ms  %6.1f GFLOP/s\n", t_qk * 1e3,
                t_sm * 1e3, t_pv * 1e3, t_u * 1e3, flop / t_u / 1e9);
    std::printf("    fused:   %7.3f ms  %6.1f GFLOP/s  (runs: %.3f / %.3f ms)  speedup x%.2f\n", tf * 1e3, flop / tf / 1e9,
                t_f * 1e3, t_f2 * 1e3, t_u / tf);
    std::printf("    not written by the fused kernel: scores %.1f MB + P %.1f MB (BF16), and not read back: %.1f MB, per layer\n",
                mb, mb, 2 * mb);
  }
}

// Two threads calling kernels at once (two sessions): the pool must stay correct.
void ConcurrencyTest(int threads) {
  MatMulArgs a;
  a.M = 300; a.N = 256; a.K = 128;
  a.a_rs = 128; a.b_rs = 256; a.c_rs = 256;
  a.b_is_constant = true;
  std::vector<bf16_t> A = RandVec(300 * 128), B = RandVec(128 * 256), ref(300 * 256);
  MatMul(a, A.data(), B.data(), ref.data(), threads);
  bool ok = true;
  std::vector<std::thread> ts;
  std::mutex mu;
  for (int t = 0; t < 3; ++t)
    ts.emplace_back([&] {
      std::vector<bf16_t> c(300 * 256);
      for (int i = 0; i < 200; ++i) {
        std::fill(c.begin(), c.end(), 0);
        MatMul(a, A.data(), B.data(), c.data(), threads);
        if (c != ref) { std::lock_guard<std::mutex> lk(mu); ok = false; }
      }
    });
  for (auto& t : ts) t.join();
  Report("3 threads x 200 concurrent MatMul calls", ok, "");
}

void RowKernelPerf(int threads) {
  std::printf("\nOther kernels, %d threads (ms: AVX-512 path / portable reference)\n", threads);
  const int64_t T = 1500, D = 512, H = 8, F = 2048;
  auto both = [&](const char* name, const std::function<void()>& fast, const std::function<void()>& ref) {
    if (!Want(name)) return;
    const double tf = Time(fast, 5, 0.3), tr = Time(ref, 3, 0.3);
    std::printf("  %-40s %8.3f ms / %8.3f ms  (x%.1f)\n", name, tf * 1e3, tr * 1e3, tr / tf);
  };
  std::vector<bf16_t> x = RandVec(H * T * T), y(H * T * T);
  std::vector<float> g(D, 1.0f), b(D, 0.0f);
  SoftmaxArgs sa; sa.rows = H * T; sa.cols = T; sa.scale = 0.125f;
  both("softmax 8x1500x1500", [&] { Softmax(sa, x.data(), y.data(), threads); },
       [&] { portable::Softmax(sa, x.data(), y.data(), threads); });
  LayerNormArgs la; la.rows = T; la.cols = D; la.gamma = g.data(); la.beta = b.data();
  both("layernorm 1500x512", [&] { LayerNorm(la, x.data(), y.data(), threads); },
       [&] { portable::LayerNorm(la, x.data(), y.data(), threads); });
  both("gelu erf 1500x2048", [&] { Gelu(GeluMode::kErf, T * F, x.data(), y.data(), threads); },
       [&] { portable::Gelu(GeluMode::kErf, T * F, x.data(), y.data(), threads); });
  TensorView v = TensorView::Contiguous({T, D});
  both("add 1500x512 (residual)", [&] { Binary(BinaryOp::kAdd, x.data(), v, x.data() + T * D, v, y.data(), v, threads); },
       [&] { portable::Binary(BinaryOp::kAdd, x.data(), v, x.data() + T * D, v, y.data(), v, threads); });
  TensorView bias = v; bias.strides[0] = 0;
  both("add 1500x512 + bias[512]", [&] { Binary(BinaryOp::kAdd, x.data(), v, x.data(), bias, y.data(), v, threads); },
       [&] { portable::Binary(BinaryOp::kAdd, x.data(), v, x.data(), bias, y.data(), v, threads); });
  both("mul 1500x512 by scalar", [&] { BinaryScalar(BinaryOp::kMul, x.data(), v, 0.125f, false, y.data(), v, threads); },
       [&] { portable::BinaryScalar(BinaryOp::kMul, x.data(), v, 0.125f, false, y.data(), v, threads); });
  TensorView heads;  // [T, H, Dh] read as [H, T, Dh]
  heads.rank = 3;
  heads.shape[0] = H; heads.shape[1] = T; heads.shape[2] = 64;
  heads.strides[0] = 64; heads.strides[1] = D; heads.strides[2] = 1;
  TensorView hv = TensorView::Contiguous({H, T, 64});
  both("copy [T,H,Dh] -> [H,T,Dh]", [&] { Copy(x.data(), heads, y.data(), hv, threads); },
       [&] { portable::Copy(x.data(), heads, y.data(), hv, threads); });
  TensorView kt = heads;  // [H, Dh, T]: K^T materialised
  kt.shape[1] = 64; kt.shape[2] = T; kt.strides[1] = 1; kt.strides[2] = D;
  TensorView ktv = TensorView::Contiguous({H, 64, T});
  both("copy K^T [T,H,Dh] -> [H,Dh,T]", [&] { Copy(x.data(), kt, y.data(), ktv, threads); },
       [&] { portable::Copy(x.data(), kt, y.data(), ktv, threads); });
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, perf = true, test = true;
  int threads = HardwareThreads();
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--quick") quick = true;
    else if (s == "--no-perf") perf = false;
    else if (s == "--no-test") test = false;
    else if (s == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (s == "--only" && i + 1 < argc) g_only = argv[++i];
  }
  std::printf("kernel path: %s, threads: %d\n", KernelIsaName(), threads);
  if (test) {
    MatMulTests(quick, threads);
    RowKernelTests(threads);
    AttentionTests(quick, threads);
    ConcurrencyTest(threads);
  }
  if (perf) {
    MatMulPerf(threads);
    RowKernelPerf(threads);
    AttentionPerf(threads);
  }
  if (test) std::printf("\n%s (%d failures)\n", g_failures ? "FAILED" : "all checks passed", g_failures);
  return g_failures ? 1 : 0;
}
