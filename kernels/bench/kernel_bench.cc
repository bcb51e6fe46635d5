// Kernel speed bench for the emulated kernels (no ONNX Runtime). Correctness lives in the C++
// test tier (kernels/<op>/tests/, run by ctest); this program only times.
// Build and run: kernels/bench/run.sh (CMake target kernel_bench, the library's compile flags).
//
// Speed: GFLOP/s of MatMul on the whisper-base encoder shapes (and ms of the other kernels);
// fused attention against the unfused MatMul -> Softmax -> MatMul sequence on the same shapes.
//
// Usage: kernel_bench [--threads N] [--only NAME]   (NAME: a shape name, "int8", "attention", ...)
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/cpu_features.h"
#include "common/kernel_isa.h"
#include "common/parallel.h"
#include "common/peak.h"
#include "attention/attention.h"
#include "attention/attention_internal.h"
#include "matmul_int8/matmul_int8.h"
#include "matmul_int8/matmul_int8_internal.h"

using namespace phoenix;
using namespace phoenix::kernels;

namespace {

std::mt19937 g_rng(1234);

std::vector<bf16_t> RandVec(size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<bf16_t> v(n);
  for (auto& x : v) x = F32ToBf16(d(g_rng));
  return v;
}

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double CpuNow() {  // CPU seconds of the whole process (all threads)
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// CPU seconds of the run Time() returned (median by wall time): on a machine shared with other
// processes, work per CPU-second is what the kernel achieves; wall time also counts the waits.
double g_last_cpu = 0, g_best_cpu = 0;  // median and least CPU time of the last Time()

// Median seconds of fn over >= min_reps runs and >= min_time seconds.
double Time(const std::function<void()>& fn, int min_reps = 5, double min_time = 0.8) {
  fn();
  std::vector<std::pair<double, double>> t;
  const double end = Now() + min_time;
  while (static_cast<int>(t.size()) < min_reps || Now() < end) {
    const double t0 = Now(), c0 = CpuNow();
    fn();
    t.push_back({Now() - t0, CpuNow() - c0});
  }
  std::sort(t.begin(), t.end());
  g_last_cpu = t[t.size() / 2].second;
  g_best_cpu = t[0].second;
  for (const auto& x : t) g_best_cpu = x.second < g_best_cpu ? x.second : g_best_cpu;
  return t[t.size() / 2].first;
}

// Peak per core of the instruction the BF16 / INT8 kernels run on (common/peak.h), G(FL)OP/s.
double g_peak_core = 0, g_peak_int8_core = 0;
PeakPerCore g_peak;

// One result line: wall-time rate, rate per CPU-second, and its share of the per-core peak.
void Line(const char* name, double flop, double t) {
  const double per_cpu = flop / g_last_cpu / 1e9;
  std::printf("  %-34s %7.1f GFLOP/s  %8.3f ms  | %6.1f GFLOP per CPU-s = %4.0f%% of peak\n", name, flop / t / 1e9,
              t * 1e3, per_cpu, g_peak_core > 0 ? 100.0 * per_cpu / g_peak_core : 0.0);
}

const char* g_only = nullptr;  // --only NAME: run just the perf shapes whose name contains NAME
bool Want(const char* name) { return !g_only || std::strstr(name, g_only); }

// A whisper linear layer [T, K] x [K, N] (constant weight), bias, epilogue, optional residual.
MatMulArgs LinearArgs(int64_t T, int64_t K, int64_t N, const float* bias, Epilogue e, const void* residual) {
  MatMulArgs a;
  a.M = T; a.N = N; a.K = K;
  a.a_rs = K; a.b_rs = N; a.c_rs = N;
  a.bias = bias;
  a.epilogue = e;
  a.b_is_constant = true;
  if (residual) { a.residual = residual; a.r_rs = N; }
  return a;
}

// ---------------------------------------------------------------------------------------------
// INT8 linear layers (matmul_int8) against the BF16 MatMul on the same shapes, interleaved.
void Int8Perf(int threads) {
  std::printf("\nINT8 MatMul vs BF16 MatMul, %d threads, whisper-base linear layers (same epilogues)\n", threads);
  const int64_t T = 1500, D = 512, F = 2048;
  std::vector<bf16_t> x = RandVec(T * F), w = RandVec(F * 3 * D), y(T * F), res = RandVec(T * F);
  std::vector<int8_t> w8(F * 3 * D);
  for (auto& v : w8) v = static_cast<int8_t>(g_rng() % 256 - 128);
  std::vector<float> bias(F * 2, 0.1f), wscale(F * 2, 0.003f);
  double t16 = 0, t8 = 0;
  auto run = [&](const char* name, int64_t K, int64_t N, Epilogue e, bool residual) {
    if (!Want(name) && !Want("int8")) return;
    const MatMulArgs a = LinearArgs(T, K, N, bias.data(), e, residual ? res.data() : nullptr);
    Int8MatMulArgs q;
    q.a = QuantParams{0.02f, 128, false};  // ORT's default: uint8 asymmetric activations
    q.b_int8 = w8.data();
    q.b_scale = wscale.data();
    q.b_channels = N;
    const double flop = 2.0 * T * N * K;
    const double tb = Time([&] { MatMul(a, x.data(), w.data(), y.data(), threads); }, 5, 0.4);
    const double cb = g_last_cpu;
    const double ti = Time([&] { MatMulInt8(a, q, x.data(), nullptr, y.data(), threads); }, 5, 0.4);
    const double ci = g_last_cpu;
    std::printf("  %-34s BF16 %8.3f ms  INT8 %8.3f ms  INT8/BF16 %.2f (CPU time %.2f)  INT8 %6.1f GOP per CPU-s = %3.0f%% of peak\n",
                name, tb * 1e3, ti * 1e3, ti / tb, ci / cb, flop / ci / 1e9,
                g_peak_int8_core > 0 ? 100.0 * flop / ci / 1e9 / g_peak_int8_core : 0.0);
    // each INT8 path this CPU runs, right after, against its own instruction's peak
    const struct { Int8Path path; const char* name; double peak; } paths[] = {
        {Int8Path::kAvx2, "avx2 (vpmaddwd)", g_peak.int16_madd},
        {Int8Path::kAvxVnni, "avx_vnni (vpdpbusd ymm)", g_peak.int8_dot_ymm},
        {Int8Path::kAvx512Vnni, "avx512_vnni (vpdpbusd zmm)", g_peak.int8_dot}};
    for (const auto& pp : paths) {
      if (!Int8PathRuns(pp.path)) continue;
      const double tp = Time([&] { MatMulInt8On(pp.path, a, q, x.data(), nullptr, y.data(), threads); }, 5, 0.4);
      const double cp = g_last_cpu, best = g_best_cpu;
      std::printf("  %-34s   %-27s %8.3f ms  /BF16 %.2f (CPU time %.2f)  %6.1f GOP per CPU-s = %3.0f%% of peak"
                  " (best run %3.0f%%)\n", "", pp.name, tp * 1e3, tp / tb, cp / cb, flop / cp / 1e9,
                  pp.peak > 0 ? 100.0 * flop / cp / 1e9 / pp.peak : 0.0, pp.peak > 0 ? 100.0 * flop / best / 1e9 / pp.peak : 0.0);
    }
    t16 += cb;
    t8 += ci;
  };
  run("qkv_1500x512x1536", D, 3 * D, Epilogue::kNone, false);
  run("out_1500x512x512", D, D, Epilogue::kNone, true);
  run("ffn1_1500x512x2048", D, F, Epilogue::kGeluErf, false);
  run("ffn2_1500x2048x512", F, D, Epilogue::kNone, true);
  if (t16 > 0) std::printf("  %-34s INT8/BF16 CPU time %.2f\n", "all linear layers of one layer", t8 / t16);
}

// ---------------------------------------------------------------------------------------------
// MatMul speed on the whisper-base encoder shapes (T = 1500, D = 512, 8 heads of 64, FFN 2048).
struct PerfShape {
  const char* name;
  int64_t batch, M, N, K;
  bool attention_qk, attention_av;
};


void MatMulPerf(int threads) {
  std::printf("\nMatMul speed, %d threads (BF16 in/out, FP32 accumulation)\n", threads);
  const int64_t T = 1500, D = 512, H = 8, Dh = 64, F = 2048;
  std::vector<bf16_t> x = RandVec(T * F), w = RandVec(F * 3 * D), y(T * F * 4), qkv = RandVec(T * 3 * D),
                      probs = RandVec(H * T * T, 0.02f), out(H * T * T);
  std::vector<float> bias(F * 2, 0.1f);
  double total_s = 0, total_flop = 0, total_cpu = 0;
  auto run_linear = [&](const char* name, int64_t K, int64_t N, Epilogue e, bool residual) {
    if (!Want(name)) return;
    const MatMulArgs a = LinearArgs(T, K, N, bias.data(), e, residual ? qkv.data() : nullptr);
    const double t = Time([&] { MatMul(a, x.data(), w.data(), y.data(), threads); });
    const double flop = 2.0 * T * N * K;
    Line(name, flop, t);
    total_s += t; total_flop += flop; total_cpu += g_last_cpu;
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
    Line("qkT_8x1500x64x1500 (K^T view)", flop, t);
    total_s += t; total_flop += flop; total_cpu += g_last_cpu;
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
    Line("av_8x1500x1500x64 (V view)", flop, t);
    total_s += t; total_flop += flop; total_cpu += g_last_cpu;
  }
  if (total_s > 0) {
    g_last_cpu = total_cpu;
    Line("all matmuls of one layer", total_flop, total_s);
  }
}

void RowKernelPerf(int threads) {
  std::printf("\nOther kernels, %d threads (ms: the dispatched path (%s) / portable reference)\n", threads, KernelIsaName());
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
    const double c_f = g_last_cpu;
    const double t_qk = Time([&] { MatMul(qk, Q.data(), K.data(), scores.data(), threads); }, 5, 0.4);
    const double t_sm = Time([&] { Softmax(sm, scores.data(), probs.data(), threads); }, 5, 0.4);
    const double t_pv = Time([&] { MatMul(pv, probs.data(), V.data(), O2.data(), threads); }, 5, 0.4);
    const double t_u = t_qk + t_sm + t_pv;
    const double t_f2 = Time([&] { Attention(aa, Q.data(), K.data(), V.data(), O.data(), threads); });
    const double c_f2 = g_last_cpu;
    const double tf = std::min(t_f, t_f2);
    const double mb = H * T * T * 2.0 / 1e6;
    std::printf("  %s %lldx%lldx%lldx%lld:\n", label, (long long)H, (long long)T, (long long)T, (long long)Dh);
    std::printf("    unfused: qkT %7.3f ms + softmax %7.3f ms + pv %7.3f ms = %7.3f ms  %6.1f GFLOP/s\n", t_qk * 1e3,
                t_sm * 1e3, t_pv * 1e3, t_u * 1e3, flop / t_u / 1e9);
    std::printf("    fused:   %7.3f ms  %6.1f GFLOP/s  (runs: %.3f / %.3f ms)  speedup x%.2f\n", tf * 1e3, flop / tf / 1e9,
                t_f * 1e3, t_f2 * 1e3, t_u / tf);
    // per CPU-second (the machine is shared): the two products' work against the vdpbf16ps peak
    const double c_fused = std::min(c_f, c_f2);
    std::printf("    fused:   %6.1f GFLOP per CPU-s = %4.0f%% of peak (runs: %.0f%% / %.0f%%)\n", flop / c_fused / 1e9,
                g_peak_core > 0 ? 100.0 * flop / c_fused / 1e9 / g_peak_core : 0.0,
                g_peak_core > 0 ? 100.0 * flop / c_f / 1e9 / g_peak_core : 0.0,
                g_peak_core > 0 ? 100.0 * flop / c_f2 / 1e9 / g_peak_core : 0.0);
    std::printf("    not written by the fused kernel: scores %.1f MB + P %.1f MB (BF16), and not read back: %.1f MB, per layer\n",
                mb, mb, 2 * mb);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = HardwareThreads();
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (s == "--only" && i + 1 < argc) g_only = argv[++i];
  }
  const PeakPerCore peak = MeasurePeakPerCore(0.1);
  g_peak = peak;
  g_peak_core = UseAvx512Bf16() ? peak.bf16_dot : UseAvx2Fma() ? peak.fp32_fma : 0.0;
  g_peak_int8_core = UseAvx512Vnni() ? peak.int8_dot : UseAvxVnni() ? peak.int8_dot_ymm : UseAvx2Fma() ? peak.int16_madd : 0.0;
  std::printf("kernel path: %s, threads: %d; peak per core (CPU time): fp32 mul+add %.1f, fma %.1f, vdpbf16ps %.1f GFLOP/s, "
              "vpmaddwd %.1f, vpdpbusd zmm %.1f, vpdpbusd ymm %.1f GOP/s\n", KernelIsaName(), threads, peak.fp32_muladd,
              peak.fp32_fma, peak.bf16_dot, peak.int16_madd, peak.int8_dot, peak.int8_dot_ymm);
  MatMulPerf(threads);
  Int8Perf(threads);
  RowKernelPerf(threads);
  AttentionPerf(threads);
  return 0;
}
