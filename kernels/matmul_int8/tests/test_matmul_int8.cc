// INT8 MatMul (matmul_int8.h, README.md): the quantization step against ONNX / ORT semantics, the
// reference against a float64 computation of the dequantized product (exact integers: within one
// BF16 rounding), every fast path this CPU can run (AVX2 vpmaddwd, AVX-VNNI and AVX-512 VNNI
// vpdpbusd) bit-identical to the reference on every case and on edge shapes, the exact sum at the
// K limit, the PHOENIX_KERNEL_ISA dispatch, parameter checks.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/cpu_features.h"
#include "common/testing.h"
#include "matmul_int8/matmul_int8.h"
#include "matmul_int8/matmul_int8_internal.h"

using namespace phoenix;
using namespace phoenix::kernels;
using namespace phoenix::testing;

namespace {

PHX_TEST(quantize_matches_onnx_and_ort) {
  QuantParams s8{0.5f, 0, true}, u8{0.25f, 128, false};
  PHX_CHECK(Quantize(1.25f, s8) == 2);     // 2.5 -> 2 (half to even)
  PHX_CHECK(Quantize(1.75f, s8) == 4);     // 3.5 -> 4
  PHX_CHECK(Quantize(-1.25f, s8) == -2);
  PHX_CHECK(Quantize(1000.0f, s8) == 127 && Quantize(-1000.0f, s8) == -128);  // saturate
  PHX_CHECK(Quantize(INFINITY, s8) == 127 && Quantize(-INFINITY, s8) == -128);
  PHX_CHECK(Quantize(NAN, s8) == -128);    // MLAS: MAXPS keeps the bound for a NaN
  PHX_CHECK(Quantize(0.0f, u8) == 128 && Quantize(-40.0f, u8) == 0 && Quantize(40.0f, u8) == 255);
  PHX_CHECK(Quantize(0.125f, u8) == 128);  // 0.5 -> 0, + 128
  PHX_CHECK(Quantize(0.375f, u8) == 130);  // 1.5 -> 2, + 128
  // x / scale is a division: 0.3 / 0.1 in FP32 is 3.0000002 -> 3, while 0.3 * (1 / 0.1) may differ
  PHX_CHECK(Quantize(0.3f, QuantParams{0.1f, 0, true}) == static_cast<int32_t>(std::nearbyint(0.3f / 0.1f)));
  PHX_CHECK(Dequantize(130, u8) == 0.5f);
}

struct QCase {
  std::string name;
  int64_t batch, M, N, K;
  bool a_signed = false, per_channel = true, w_zero_points = false, act_b = false;
  bool a_trans = false, b_trans = false, c_trans = false;
  bool bias = false, residual = false, quant_out = false;
  Epilogue epi = Epilogue::kNone;
  bool special = false;  // NaN / Inf / huge in A
};

struct QData {
  MatMulArgs a;
  Int8MatMulArgs q;
  std::vector<bf16_t> A, Bact, R;
  std::vector<int8_t> W, wzp;
  std::vector<float> wscale, bias;
};

QData Make(const QCase& c) {
  QData d;
  const int64_t B = c.batch, M = c.M, N = c.N, K = c.K;
  MatMulArgs& a = d.a;
  a.M = M; a.N = N; a.K = K;
  a.batch_rank = 1; a.batch_shape[0] = B;
  a.a_batch_strides[0] = M * K;
  if (c.a_trans) { a.a_rs = 1; a.a_cs = M; } else { a.a_rs = K; a.a_cs = 1; }
  a.b_batch_strides[0] = c.act_b ? K * N : 0;  // weights shared by the batch
  if (c.b_trans) { a.b_rs = 1; a.b_cs = K; } else { a.b_rs = N; a.b_cs = 1; }
  a.c_batch_strides[0] = M * N;
  if (c.c_trans) { a.c_rs = 1; a.c_cs = M; } else { a.c_rs = N; a.c_cs = 1; }
  a.r_batch_strides[0] = M * N; a.r_rs = N; a.r_cs = 1;
  a.epilogue = c.epi;
  a.b_is_constant = !c.act_b;
  d.A = RandVec(B * M * K, 1.5f);
  if (c.special) {
    d.A[0] = 0x7fc0;                      // NaN -> qmin
    if (B * M * K > 2) d.A[2] = 0x7f80;   // +Inf -> qmax
    if (B * M * K > 3) d.A[3] = 0xff80;   // -Inf -> qmin
  }
  Int8MatMulArgs& q = d.q;
  q.a = c.a_signed ? QuantParams{0.02f, 0, true} : QuantParams{0.021f, 131, false};
  if (c.act_b) {
    d.Bact = RandVec(B * K * N, 0.7f);
    q.b_act = QuantParams{0.011f, c.a_signed ? 0 : 120, !c.a_signed ? false : true};
  } else {
    d.W.resize(K * N);
    for (auto& w : d.W) w = static_cast<int8_t>(UniformInt(-128, 127));
    q.b_int8 = d.W.data();
    q.b_channels = c.per_channel ? N : 1;
    d.wscale.resize(q.b_channels);
    for (auto& s : d.wscale) s = 0.002f * (1.0f + std::fabs(Normal()));
    q.b_scale = d.wscale.data();
    if (c.w_zero_points) {
      d.wzp.resize(q.b_channels);
      for (auto& z : d.wzp) z = static_cast<int8_t>(UniformInt(-128, 127));
      q.b_zero_point = d.wzp.data();
    }
  }
  d.bias.resize(N);
  for (auto& b : d.bias) b = Normal(0.0f, 0.5f);
  a.bias = c.bias ? d.bias.data() : nullptr;
  d.R = RandVec(B * M * N);
  a.residual = c.residual ? d.R.data() : nullptr;
  q.quantize_output = c.quant_out;
  q.out = QuantParams{0.05f, c.a_signed ? 0 : 128, c.a_signed};
  return d;
}

std::vector<QCase> Cases() {
  std::vector<QCase> v = {
      {"1x1x1 u8 act, per channel", 1, 1, 1, 1},
      {"odd 7x5x3 s8 act, per tensor", 1, 7, 5, 3, true, false},
      {"13x17x9 weight zero points + bias", 1, 13, 17, 9, false, true, true, false, false, false, false, true},
      {"whisper-like 100x96x512 gelu bias", 1, 100, 96, 512, true, true, false, false, false, false, false, true, false,
       false, Epilogue::kGeluErf},
      {"K blocks 50x40x1100 residual", 1, 50, 40, 1100, false, true, false, false, false, false, false, true, true},
      {"fake-quant output 33x47x129 tanh", 1, 33, 47, 129, true, true, false, false, false, false, false, true, false,
       true, Epilogue::kGeluTanh},
      {"transposed views 2x30x33x45", 2, 30, 33, 45, false, true, true, false, true, true, true},
      {"act x act 3x20x48x32", 3, 20, 48, 32, false, false, false, true},
      {"act x act s8 transposed B 2x19x21x33", 2, 19, 21, 33, true, false, false, true, false, true},
      // the zmm body's fused quantization (one N chunk): rows over two cache blocks of rows, two
      // batches, weight zero points (the row sums), residual
      {"row blocks 2x530x40x70 weight zero points", 2, 530, 40, 70, false, true, true, false, false, false, false,
       true, true},
      {"NaN/Inf in A 9x33x17", 1, 9, 33, 17, false, true, false, false, false, false, false, true, false, false,
       Epilogue::kNone, true},
  };
  for (int i = 0; i < 20; ++i) {
    auto r = [] { return UniformInt(1, 70); };
    QCase c{"random", 1 + r() % 2, r(), r(), r() * (r() % 4 == 0 ? 12 : 1)};
    c.a_signed = r() % 2; c.per_channel = r() % 2; c.w_zero_points = r() % 3 == 0; c.act_b = r() % 4 == 0;
    c.a_trans = r() % 4 == 0; c.b_trans = r() % 3 == 0; c.c_trans = r() % 5 == 0;
    c.bias = r() % 2; c.residual = r() % 3 == 0; c.quant_out = r() % 3 == 0; c.epi = static_cast<Epilogue>(r() % 3);
    c.name = "random " + std::to_string(c.batch) + "x" + std::to_string(c.M) + "x" + std::to_string(c.N) + "x" +
             std::to_string(c.K);
    v.push_back(c);
  }
  return v;
}

// The exact integer sum and the output recomputed from the dequantized operands in float64:
// sum_k dq(a) dq(b) = acc * sa * sb[n] exactly, so only the FP32 steps and the roundings differ.
PHX_TEST(reference_vs_float64_dequantized_product) {
  for (const QCase& c : Cases()) {
    if (c.epi != Epilogue::kNone || c.quant_out || c.residual) continue;  // the product itself
    QData d = Make(c);
    std::vector<bf16_t> C(c.batch * c.M * c.N);
    portable::MatMulInt8(d.a, d.q, d.A.data(), d.Bact.data(), C.data(), 2);
    int64_t bad = 0;
    for (int64_t b = 0; b < c.batch; ++b)
      for (int64_t m = 0; m < c.M; ++m)
        for (int64_t n = 0; n < c.N; ++n) {
          double sum = 0;
          for (int64_t k = 0; k < c.K; ++k) {
            const float x = Bf16ToF32(d.A[b * c.M * c.K + m * d.a.a_rs + k * d.a.a_cs]);
            const double adq = Dequantize(Quantize(x, d.q.a), d.q.a);
            double bdq;
            if (c.act_b) {
              bdq = Dequantize(Quantize(Bf16ToF32(d.Bact[b * c.K * c.N + k * d.a.b_rs + n * d.a.b_cs]), d.q.b_act), d.q.b_act);
            } else {
              const int64_t ch = d.q.b_channels == 1 ? 0 : n;
              bdq = (double(d.W[k * d.a.b_rs + n * d.a.b_cs]) - (d.q.b_zero_point ? d.q.b_zero_point[ch] : 0)) *
                    d.q.b_scale[ch];
            }
            sum += adq * bdq;  // the dequantized product: adq is exact here up to the FP32 step
          }
          const double want = sum + (c.bias ? d.bias[n] : 0.0);
          const float got = Bf16ToF32(C[b * c.M * c.N + m * d.a.c_rs + n * d.a.c_cs]);
          // one BF16 rounding + a few FP32 roundings (sa * sb, float(acc), the dequantized a)
          const double tol = std::ldexp(std::fabs(want), -8) + 1e-6 * (std::fabs(sum) + std::fabs(want)) +
                             c.K * 1e-7 * std::fabs(d.q.a.scale) + 1e-30;
          bad += !(std::fabs(got - want) <= tol);
        }
    PHX_CHECK(bad == 0) << c.name << ": " << bad << " outputs off";
  }
}

PHX_TEST(fast_equals_reference) {
  if (!UseAvx2Fma()) return Skip("no fast INT8 path on this CPU (portable only)");
  for (const QCase& c : Cases()) {
    QData d = Make(c);
    std::vector<bf16_t> ref(c.batch * c.M * c.N, 0x1234), fast(ref.size(), 0x4321);
    portable::MatMulInt8(d.a, d.q, d.A.data(), d.Bact.data(), ref.data(), 2);
    MatMulInt8(d.a, d.q, d.A.data(), d.Bact.data(), fast.data(), 2);
    const Agreement ag = Compare(ref, fast);
    PHX_CHECK(ag.exact == ag.count) << c.name << ": " << ag.count - ag.exact << " of " << ag.count << " differ, max "
                                    << ag.max_ulp << " ulp";
    if (d.q.b_int8) {  // second call: the cached packed weights give the same bits
      std::vector<bf16_t> again(ref.size(), 0);
      MatMulInt8(d.a, d.q, d.A.data(), d.Bact.data(), again.data(), 1);
      PHX_CHECK(again == fast) << c.name << ": cached weights or one thread differ";
      ReleasePackedWeights(d.W.data(), d.W.size());
    }
  }
}

const Int8Path kFastPaths[] = {Int8Path::kAvx2, Int8Path::kAvxVnni, Int8Path::kAvx512Vnni};
const char* PathName(Int8Path p) {
  switch (p) {
    case Int8Path::kPortable: return "portable";
    case Int8Path::kAvx2: return "avx2";
    case Int8Path::kAvxVnni: return "avx_vnni";
    case Int8Path::kAvx512Vnni: return "avx512_vnni";
  }
  return "?";
}

// Edge shapes for the vpdpbusd tiles (4 k per step, rows padded to 64 bytes, 12 x 32 and 6 x 16
// micro-tiles, 16-column panels) and the AVX2 one (pairs, 4 x 16 tiles, K blocks of 512).
std::vector<QCase> EdgeCases() {
  std::vector<QCase> v;
  const int64_t ks[] = {1, 2, 3, 4, 5, 7, 63, 64, 65, 127, 129, 515};
  int i = 0;
  for (int64_t K : ks) {
    for (int64_t M : {1, 6, 7, 12, 13, 25}) {
      const int64_t N = (int64_t[]){1, 8, 15, 16, 17, 31, 32, 33, 47, 65}[i % 10];
      QCase c{"edge", 1 + (i % 3 == 0), M, N, K};
      c.a_signed = i % 2;
      c.per_channel = i % 3 != 1;
      c.w_zero_points = i % 2 == 0;  // the row-sum correction
      c.act_b = i % 5 == 0;          // B quantized per call (uint8 or int8 with its zero point)
      c.bias = i % 2;
      c.residual = i % 4 == 1;
      c.quant_out = i % 6 == 2;
      c.epi = static_cast<Epilogue>(i % 3);
      c.c_trans = i % 7 == 3;
      c.a_trans = i % 9 == 4;
      c.name = "edge " + std::to_string(c.batch) + "x" + std::to_string(M) + "x" + std::to_string(N) + "x" +
               std::to_string(K);
      v.push_back(c);
      ++i;
    }
  }
  return v;
}

// Every path this CPU can run, whatever PHOENIX_KERNEL_ISA says, bit for bit against the reference.
PHX_TEST(every_path_equals_reference) {
  std::vector<QCase> cases = Cases();
  for (const QCase& c : EdgeCases()) cases.push_back(c);
  int ran = 0;
  for (Int8Path path : kFastPaths) {
    if (!Int8PathRuns(path)) {
      Note("%s: not on this CPU", PathName(path));
      continue;
    }
    ++ran;
    int64_t differ = 0;
    for (const QCase& c : cases) {
      QData d = Make(c);
      std::vector<bf16_t> ref(c.batch * c.M * c.N, 0x1234), fast(ref.size(), 0x4321);
      portable::MatMulInt8(d.a, d.q, d.A.data(), d.Bact.data(), ref.data(), 2);
      MatMulInt8On(path, d.a, d.q, d.A.data(), d.Bact.data(), fast.data(), 2);
      const Agreement ag = Compare(ref, fast);
      differ += ag.count - ag.exact;
      PHX_CHECK(ag.exact == ag.count) << PathName(path) << " " << c.name << ": " << ag.count - ag.exact << " of "
                                      << ag.count << " differ, max " << ag.max_ulp << " ulp";
      if (d.q.b_int8) {  // cached packed weights, one thread
        std::vector<bf16_t> again(ref.size(), 0);
        MatMulInt8On(path, d.a, d.q, d.A.data(), d.Bact.data(), again.data(), 1);
        PHX_CHECK(again == fast) << PathName(path) << " " << c.name << ": cached weights or one thread differ";
        ReleasePackedWeights(d.W.data(), d.W.size());
      }
    }
    Note("%s: %zu cases, %lld outputs differ", PathName(path), cases.size(), static_cast<long long>(differ));
  }
  if (!ran) Skip("no fast INT8 path on this CPU");
}

// The vpdpbusd bodies' row quantization (x * RN(1 / scale), divided near half-integers) against
// Quantize (a true division) on every BF16 value whose quotient lies within +-700, NaN, Inf, with
// scales where the plain product would round differently, and one whose reciprocal overflows
// (the divide path).
PHX_TEST(vnni_row_quantization_equals_quantize) {
  struct Body { Int8Path path; int mr; int32_t (*fn)(const bf16_t*, int64_t, const QuantParams&, uint8_t*); };
  const Body bodies[] = {{Int8Path::kAvx512Vnni, avx512_vnni::kMR, &avx512_vnni::QuantizeRowU8},
                         {Int8Path::kAvxVnni, avx_vnni::kMR, &avx_vnni::QuantizeRowU8}};
  // the last six: found by search, x * RN(1 / scale) rounds to the other side of a half-integer
  // than x / scale for some BF16 x (e.g. 0.0029449462890625 / 0x1.30fcd6p-14 = 40.5 exactly, the
  // product 40.500004)
  const float scales[] = {3.0f / 256, 0.1f, 1.0f / 3, 0.021f, 0.7f, 1e-3f, 2.5f, 0.0123456f, 1e-39f,
                          0x1.30fcd6p-14f, 0x1.d59ae6p-22f, 0x1.78344ep-15f, 0x1.5f4854p-22f, 0x1.5a740ep-21f,
                          0x1.27c45ap-12f};
  int ran = 0;
  for (const Body& body : bodies) {
    if (!Int8PathRuns(body.path)) continue;
    ++ran;
    for (float sc : scales)
      for (QuantParams q : {QuantParams{sc, 0, true}, QuantParams{sc, 131, false}, QuantParams{sc, -7, true}}) {
        std::vector<bf16_t> x = {0x7fc0, 0x7f80, 0xff80, 0x0000, 0x8000, 0x0001};
        for (uint32_t b = 0; b < 0x7f80; ++b) {
          const float v = Bf16ToF32(static_cast<bf16_t>(b));
          if (v / sc < 700.0f) {
            x.push_back(static_cast<bf16_t>(b));
            x.push_back(static_cast<bf16_t>(b | 0x8000));
          }
        }
        const int64_t n = static_cast<int64_t>(x.size());
        std::vector<uint8_t> dst(static_cast<size_t>(vnni::APanelBytes(n, body.mr)), 0xAB);
        const int32_t sum = body.fn(x.data(), n, q, dst.data());
        int64_t bad = 0, want_sum = 0;
        for (int64_t k = 0; k < n; ++k) {
          const int32_t want = Quantize(Bf16ToF32(x[k]), q) + (q.is_signed ? 128 : 0);
          want_sum += want;
          bad += dst[(k / 4) * 4 * body.mr + k % 4] != want;
        }
        for (int64_t k = n; k < vnni::Quads(n) * 4; ++k) bad += dst[(k / 4) * 4 * body.mr + k % 4] != 0;
        PHX_CHECK(bad == 0 && sum == want_sum) << PathName(body.path) << " scale " << sc << " zp " << q.zero_point << ": "
                                               << bad << " of " << n << " differ, sum " << sum << " want " << want_sum;
      }
  }
  if (!ran) Skip("no vpdpbusd path on this CPU");
}

// The exact sum at the K limit: |acc| up to 33025 * 255^2 = 2147450625, one short of 2^31, where
// the corrections wrap modulo 2^32 on the way. (qa - za) = 255 (uint8) and -255 (int8) against
// (qb - zb) = +-255: all four sign patterns of the largest sums.
PHX_TEST(exact_sum_at_the_k_limit) {
  const int64_t K = kMaxInt8K, M = 4, N = 2;
  MatMulArgs a;
  a.M = M; a.N = N; a.K = K;
  a.a_rs = K; a.a_cs = 1; a.b_rs = N; a.b_cs = 1; a.c_rs = N; a.c_cs = 1;
  a.b_is_constant = true;
  std::vector<bf16_t> A(M * K);
  std::vector<int8_t> W(K * N);
  for (int64_t k = 0; k < K; ++k) { W[k * N] = 127; W[k * N + 1] = -128; }
  const float sb[2] = {1.0f, 1.0f};
  const int8_t zb[2] = {-128, 127};  // qb - zb = 255 (column 0), -255 (column 1)
  for (bool a_signed : {false, true}) {
    Int8MatMulArgs q;
    // uint8 with za = 0: qa - za = 255 (x = +1000) or 0 (x = -1000); int8 with za = 127: 0 or -255.
    q.a = a_signed ? QuantParams{1.0f, 127, true} : QuantParams{1.0f, 0, false};
    q.b_int8 = W.data();
    q.b_scale = sb;
    q.b_channels = N;
    q.b_zero_point = zb;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k) A[m * K + k] = F32ToBf16(m % 2 ? -1000.0f : 1000.0f);
    // rows 0, 2: x = +1000 -> qa = qmax; rows 1, 3: x = -1000 -> qa = qmin
    std::vector<bf16_t> ref(M * N);
    portable::MatMulInt8(a, q, A.data(), nullptr, ref.data(), 1);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        const int64_t da = Quantize(Bf16ToF32(A[m * K]), q.a) - q.a.zero_point;
        const int64_t want = K * da * (n == 0 ? 255 : -255);
        PHX_CHECK(want >= -2147483647LL - 1 && want <= 2147483647LL);
        PHX_CHECK(Bf16ToF32(ref[m * N + n]) == Bf16ToF32(F32ToBf16(static_cast<float>(want))))
            << "reference m " << m << " n " << n << ": " << Bf16ToF32(ref[m * N + n]) << " want " << want;
      }
    for (Int8Path path : kFastPaths) {
      if (!Int8PathRuns(path)) continue;
      std::vector<bf16_t> got(M * N, 0);
      MatMulInt8On(path, a, q, A.data(), nullptr, got.data(), 2);
      PHX_CHECK(got == ref) << PathName(path) << (a_signed ? " int8" : " uint8") << " activations at K = " << K;
      ReleasePackedWeights(W.data(), W.size());
    }
  }
}

// PHOENIX_KERNEL_ISA picks the INT8 path (cmake/PhoenixTests.cmake runs this binary with each
// value) and the names say which one runs.
PHX_TEST(isa_dispatch_names_the_path) {
  const char* env = std::getenv("PHOENIX_KERNEL_ISA");
  const std::string isa = env ? env : "";
  const bool zmm = Int8PathRuns(Int8Path::kAvx512Vnni), ymm = Int8PathRuns(Int8Path::kAvxVnni);
  const bool avx2 = Int8PathRuns(Int8Path::kAvx2);
  std::string want;  // the INT8 path
  if (isa == "portable") want = "portable";
  else if (isa == "avx2") want = avx2 ? "avx2" : "portable";
  else if (isa == "avx_vnni" || isa == "avx512_bf16") want = ymm ? "avx_vnni" : avx2 ? "avx2" : "portable";
  else want = zmm ? "avx512_vnni" : ymm ? "avx_vnni" : avx2 ? "avx2" : "portable";
  PHX_CHECK(Int8IsaName() == want) << "PHOENIX_KERNEL_ISA=" << isa << ": " << Int8IsaName() << ", expected " << want;
  PHX_CHECK(UseAvx512Vnni() == (want == "avx512_vnni"));
  PHX_CHECK(UseAvxVnni() == (ymm && isa != "portable" && isa != "avx2"));
  // KernelIsaName is the PHOENIX_KERNEL_ISA value selecting what runs: asking for it gives it back
  const std::string name = KernelIsaName();
  const std::string expect = want == "avx512_vnni" ? "avx512_vnni" : UseAvx512Bf16() ? "avx512_bf16" : want;
  PHX_CHECK(name == expect) << "KernelIsaName " << name << ", expected " << expect;
  if (isa == "avx_vnni" || isa == "avx2" || isa == "portable") {
    PHX_CHECK(!UseAvx512Bf16()) << isa << " caps AVX-512";
  }
  Note("PHOENIX_KERNEL_ISA=%s: INT8 path %s, kernels %s", isa.c_str(), Int8IsaName(), KernelIsaName());
}

PHX_TEST(bad_parameters_are_refused) {
  QData d = Make(QCase{"p", 1, 4, 4, 4});
  std::vector<bf16_t> C(16, 0);
  auto refused = [&](Int8MatMulArgs q, MatMulArgs a) {
    try {
      MatMulInt8(a, q, d.A.data(), nullptr, C.data(), 1);
    } catch (const std::invalid_argument&) {
      return true;
    }
    return false;
  };
  Int8MatMulArgs q = d.q;
  q.a.scale = 0.0f;
  PHX_CHECK(refused(q, d.a)) << "zero scale";
  q = d.q;
  q.a.scale = NAN;
  PHX_CHECK(refused(q, d.a)) << "NaN scale";
  q = d.q;
  q.a.zero_point = 300;
  PHX_CHECK(refused(q, d.a)) << "zero point out of range";
  q = d.q;
  q.b_channels = 3;
  PHX_CHECK(refused(q, d.a)) << "3 scales for N = 4";
  q = d.q;
  q.b_int8 = nullptr;
  PHX_CHECK(refused(q, d.a)) << "no B";
  MatMulArgs big = d.a;
  big.K = kMaxInt8K + 1;
  PHX_CHECK(refused(d.q, big)) << "K beyond the int32 bound";
  PHX_CHECK(kMaxInt8K * 255 * 255 <= 2147483647LL && (kMaxInt8K + 1) * 255 * 255 > 2147483647LL);
  PHX_CHECK(C == std::vector<bf16_t>(16, 0)) << "a refused call wrote its output";
}

// A pruned channel (scale 0) and a negative scale are valid ONNX weights the CPU EP runs: the
// kernel runs them (the scale only multiplies the exact sum). NaN / Inf scales and a K beyond the
// exact-sum bound are refused with the predicate's text, which the provider's capability uses too.
PHX_TEST(zero_and_negative_weight_scales_run_nonfinite_are_refused) {
  QData d = Make(QCase{"scales", 1, 5, 4, 7});
  d.wscale = {0.0f, -0.004f, 0.004f, -0.0f};
  d.q.b_scale = d.wscale.data();
  PHX_CHECK(Int8MatMulRefusal(d.a.K, d.wscale.data(), 4) == nullptr);
  std::vector<bf16_t> C(20, 0x1234);
  MatMulInt8(d.a, d.q, d.A.data(), nullptr, C.data(), 1);
  for (int64_t m = 0; m < 5; ++m) {
    PHX_CHECK(Bf16ToF32(C[m * 4 + 0]) == 0.0f && Bf16ToF32(C[m * 4 + 3]) == 0.0f) << "pruned channel not 0";
    // column 1 is column 2's weights (the same integers) with the scale negated
    double s1 = 0, s2 = 0;
    for (int64_t k = 0; k < 7; ++k) {
      const double adq = Dequantize(Quantize(Bf16ToF32(d.A[m * 7 + k]), d.q.a), d.q.a);
      s1 += adq * d.W[k * 4 + 1] * -0.004;
      s2 += adq * d.W[k * 4 + 2] * 0.004;
    }
    PHX_CHECK(std::fabs(Bf16ToF32(C[m * 4 + 1]) - s1) <= std::ldexp(std::fabs(s1), -8) + 1e-6) << "negative scale";
    PHX_CHECK(std::fabs(Bf16ToF32(C[m * 4 + 2]) - s2) <= std::ldexp(std::fabs(s2), -8) + 1e-6);
  }
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    d.wscale[2] = bad;
    PHX_CHECK(Int8MatMulRefusal(d.a.K, d.wscale.data(), 4) != nullptr);
    bool threw = false;
    try {
      MatMulInt8(d.a, d.q, d.A.data(), nullptr, C.data(), 1);
    } catch (const std::invalid_argument& e) {
      threw = std::string(e.what()).find(Int8MatMulRefusal(d.a.K, d.wscale.data(), 4)) != std::string::npos;
    }
    PHX_CHECK(threw) << "scale " << bad << " not refused with the predicate's text";
  }
  PHX_CHECK(Int8MatMulRefusal(kMaxInt8K, nullptr, 0) == nullptr && Int8MatMulRefusal(kMaxInt8K + 1, nullptr, 0) != nullptr);
}

}  // namespace

int main(int argc, char** argv) { return RunAll(argc, argv); }
