// INT8 MatMul (matmul_int8.h, README.md): the quantization step against ONNX / ORT semantics, the
// reference against a float64 computation of the dequantized product (exact integers: within one
// BF16 rounding), the fast path bit-identical to the reference on every case, parameter checks.
#include <cmath>
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
