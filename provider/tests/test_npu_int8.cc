// The NPU INT8 MatMul's host-side decisions (issue 23, item 5; docs/npu.md 2d), no XRT needed:
// which MatMulInt8 calls the manifest routes to the NPU stages (Manifest::Find, what the XRT
// device's CanRun and so the hybrid device's host-or-NPU choice use), and the parameters the XRT
// device writes for those stages (int8_params.h), checked against the contract's exact sum.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/testing.h"
#include "devices/xrt/int8_params.h"
#include "devices/emulated/emulated_device.h"
#include "devices/xrt/manifest.h"
#include "graph_view.h"
#include "weights.h"

using namespace phoenix;
using namespace phoenix::xrt_device;
using namespace phoenix::testing;

namespace {

const char* kManifest = R"({"version": 2, "xclbin": "k.xclbin", "kernels": [
 {"op": "matmul_int8", "M": 64, "K": 32, "N": 48, "bias": true,
  "stages": [{"kernel_name": "Q8", "insts": "q", "args": ["A", "qparams", "qa"]},
             {"kernel_name": "MM8", "insts": "m", "args": ["qa", "B", "acc"]},
             {"kernel_name": "EPI8", "insts": "e", "args": ["acc", "colparams", "C"]}]},
 {"op": "matmul", "M": 64, "K": 32, "N": 48, "bias": true,
  "stages": [{"kernel_name": "MM", "insts": "m", "args": ["A", "B", "acc"]},
             {"kernel_name": "EPI", "insts": "e", "args": ["acc", "bias", "C"]}]}]})";

KernelCall Int8Call(int64_t M = 64, int64_t K = 32, int64_t N = 48) {
  KernelCall c;
  c.params = MatMulInt8Params{};
  c.in[0] = {0, TensorView::Contiguous({1, M, K})};
  c.in[1] = {1, TensorView::Contiguous({K, N})};
  c.in[2] = {2, TensorView::Contiguous({N})};
  c.in[4] = {3, TensorView::Contiguous({N})};
  c.out = {4, TensorView::Contiguous({1, M, N})};
  return c;
}

}  // namespace

PHX_TEST(int8_matmul_calls_find_the_int8_manifest_kernel) {
  Manifest m;
  PHX_CHECK(ParseManifest(kManifest, "test.json", &m, false).ok());
  std::string why;
  const ManifestKernel* k = m.Find(Int8Call(), &why);
  PHX_CHECK(k != nullptr && k->op == "matmul_int8") << why;
  PHX_CHECK(k->ScratchBytes() == 64 * 48 * 4 && k->QuantizedABytes() == 64 * 32);
  // A BF16 MatMul of the same shape finds the BF16 kernel, not the INT8 one.
  KernelCall bf = Int8Call();
  bf.params = MatMulParams{};
  bf.in[4] = {};
  const ManifestKernel* kb = m.Find(bf, &why);
  PHX_CHECK(kb != nullptr && kb->op == "matmul") << why;
}

PHX_TEST(int8_calls_the_npu_stages_cannot_run_stay_on_the_host_with_a_reason) {
  Manifest m;
  PHX_CHECK(ParseManifest(kManifest, "test.json", &m, false).ok());
  std::string why;
  KernelCall zp = Int8Call();  // asymmetric weights: this manifest has no "weight_zero_points" kernel
  zp.in[5] = {5, TensorView::Contiguous({48})};
  PHX_CHECK(m.Find(zp, &why) == nullptr && why.find("\"weight_zero_points\": true") != std::string::npos) << why;
  KernelCall fq = Int8Call();
  fq.Params<MatMulInt8Params>().quantize_output = true;
  PHX_CHECK(m.Find(fq, &why) == nullptr && why.find("QuantizeLinear") != std::string::npos) << why;
  KernelCall gelu = Int8Call();
  gelu.Params<MatMulInt8Params>().matmul.epilogue = kernels::Epilogue::kGeluErf;
  PHX_CHECK(m.Find(gelu, &why) == nullptr && why.find("closest: matmul_int8 64x32x48 +bias") != std::string::npos) << why;
  PHX_CHECK(m.Find(Int8Call(64, 32, 64), &why) == nullptr);
  KernelCall act;  // activation x activation stays on the host
  act.params = MatMulInt8ActivationsParams{};
  act.out = {4, TensorView::Contiguous({1, 64, 48})};
  PHX_CHECK(m.Find(act, &why) == nullptr && why.find("no NPU kernel for MatMulInt8Activations") != std::string::npos) << why;
}

const char* kManifestZp = R"({"version": 2, "xclbin": "k.xclbin", "kernels": [
 {"op": "matmul_int8", "M": 64, "K": 32, "N": 48, "bias": true, "weight_zero_points": true,
  "stages": [{"kernel_name": "Q8Z", "insts": "q", "args": ["A", "qparams", "qa"]},
             {"kernel_name": "MM8Z", "insts": "m", "args": ["qa", "B", "acc"]},
             {"kernel_name": "EPI8Z", "insts": "e", "args": ["acc", "colparams", "C"]}]},
 {"op": "matmul_int8", "M": 64, "K": 32, "N": 48, "bias": true,
  "stages": [{"kernel_name": "Q8", "insts": "q", "args": ["A", "qparams", "qa"]},
             {"kernel_name": "MM8", "insts": "m", "args": ["qa", "B", "acc"]},
             {"kernel_name": "EPI8", "insts": "e", "args": ["acc", "colparams", "C"]}]}]})";

// Weights with zero points run on a "weight_zero_points" kernel (the K' = 2K GEMM: qa is written twice),
// symmetric weights on the plain one, whatever the order in the manifest.
PHX_TEST(int8_weight_zero_points_route_to_the_zero_point_kernel) {
  Manifest m;
  PHX_CHECK(ParseManifest(kManifestZp, "test.json", &m, false).ok());
  std::string why;
  KernelCall zp = Int8Call();
  zp.in[5] = {5, TensorView::Contiguous({48})};
  const ManifestKernel* kz = m.Find(zp, &why);
  PHX_CHECK(kz != nullptr && kz->weight_zero_points && kz->stages[0].kernel_name == "Q8Z") << why;
  PHX_CHECK(kz->QuantizedABytes() == 2 * 64 * 32 && kz->Describe().find("weight-zp") != std::string::npos);
  const ManifestKernel* ks = m.Find(Int8Call(), &why);
  PHX_CHECK(ks != nullptr && !ks->weight_zero_points && ks->stages[0].kernel_name == "Q8") << why;
  PHX_CHECK(m.ToJson().find("\"weight_zero_points\":true") != std::string::npos);
  // a manifest with only the zero-point kernel leaves symmetric calls on the host, with the reason
  Manifest only;
  std::string text = kManifestZp;
  text = text.substr(0, text.find(",\n {\"op\": \"matmul_int8\", \"M\": 64, \"K\": 32, \"N\": 48, \"bias\": true,\n  \"stages\""));
  text += "]}";
  PHX_CHECK(ParseManifest(text, "test.json", &only, false).ok()) << text;
  PHX_CHECK(only.kernels.size() == 1 && only.Find(Int8Call(), &why) == nullptr &&
            why.find("symmetric weights") != std::string::npos) << why;
  // the field belongs to matmul_int8 only
  Manifest bad;
  const std::string bf = R"({"version": 2, "xclbin": "k.xclbin", "kernels": [
 {"op": "matmul", "M": 64, "K": 32, "N": 48, "weight_zero_points": true,
  "stages": [{"kernel_name": "MM", "insts": "m", "args": ["A", "B", "acc"]},
             {"kernel_name": "EPI", "insts": "e", "args": ["acc", "C"]}]}]})";
  const Status st = ParseManifest(bf, "test.json", &bad, false);
  PHX_CHECK(!st.ok() && st.message().find("weight_zero_points") != std::string::npos) << st.message();
}

// Weights with zero points on the NPU stages: [qa'' | qa''] x B' = [qb; -zb] (K' = 2K, int8 x int8, the
// GEMM's exact sum) + corr (wrapping) equals the contract's sum_k (qa - za)(qb - zb), per-channel and
// per-tensor zero points, uint8 and int8 activations, at the extremes (qb = -128 with zb = 127).
PHX_TEST(int8_zero_point_weights_reproduce_the_exact_sum) {
  const int64_t K = 257, N = 6;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> d8(-128, 127);
  std::vector<int8_t> B(K * N);
  for (auto& b : B) b = static_cast<int8_t>(d8(rng));
  for (int64_t k = 0; k < K; ++k) B[k * N] = -128;
  const std::vector<int8_t> zb_ch = {127, -127, 0, 5, -1, 64};
  const int8_t zb_t = -100;
  const float sb = 0.01f;
  PHX_CHECK(WeightZeroPointRefusal(zb_ch.data(), N) == nullptr);
  const int8_t bad_zb[2] = {3, -128};
  PHX_CHECK(WeightZeroPointRefusal(bad_zb, 2) != nullptr);
  for (const bool per_tensor : {false, true}) {
    const int8_t* zb = per_tensor ? &zb_t : zb_ch.data();
    const int64_t zc = per_tensor ? 1 : N;
    const std::vector<int8_t> Bz = ZeroPointWeights(B.data(), K, N, zb, zc);
    PHX_CHECK(Bz.size() == static_cast<size_t>(2 * K * N) && std::memcmp(Bz.data(), B.data(), K * N) == 0);
    for (const kernels::QuantParams a : {kernels::QuantParams{0.03f, 0, false}, kernels::QuantParams{0.03f, 255, false},
                                         kernels::QuantParams{0.02f, -7, true}}) {
      const std::vector<uint32_t> cp = ColumnParams(B.data(), K, N, &sb, 1, nullptr, a, zb, zc);
      const std::vector<uint32_t> cp0 = ColumnParams(B.data(), K, N, &sb, 1, nullptr, a);
      for (int trial = 0; trial < 3; ++trial) {
        std::vector<int32_t> qa(K);  // trial 0 at qmin, 1 at qmax, 2 random
        for (auto& q : qa)
          q = trial == 0 ? kernels::QuantMin(a) : trial == 1 ? kernels::QuantMax(a)
                                                            : std::uniform_int_distribution<int>(kernels::QuantMin(a), kernels::QuantMax(a))(rng);
        for (int64_t n = 0; n < N; ++n) {
          const int32_t z = zb[per_tensor ? 0 : n];
          int64_t exact = 0, s = 0;
          for (int64_t k = 0; k < K; ++k) {
            const int64_t q2 = qa[k] - ActivationShift(a);  // qa'', int8
            exact += int64_t(qa[k] - a.zero_point) * (B[k * N + n] - z);
            s += q2 * Bz[k * N + n] + q2 * Bz[(K + k) * N + n];  // the K' = 2K GEMM on [qa'' | qa'']
          }
          PHX_CHECK(s > INT32_MIN && s < INT32_MAX);
          const int32_t acc = static_cast<int32_t>(static_cast<uint32_t>(s) + cp[n]);
          PHX_CHECK(acc == exact) << acc << " vs " << exact << " (n " << n << ")";
          if (z != 0) {
            PHX_CHECK(cp[n] != cp0[n]);  // the zero point enters corr
          }
        }
      }
    }
  }
}

// The stages' arithmetic on the host parameters: quantize (qa'' = Quantize - c_a, int8), the exact
// int8 x int8 sum, + corr, * s_ab must equal the contract's acc and s_ab for uint8 and int8 activations.
PHX_TEST(int8_stage_parameters_reproduce_the_exact_sum) {
  const int64_t M = 5, K = 300, N = 7;
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> d8(-128, 127);
  std::uniform_real_distribution<float> dx(-4.0f, 4.0f);
  std::vector<int8_t> B(K * N);
  for (auto& b : B) b = static_cast<int8_t>(d8(rng));
  for (int64_t k = 0; k < K; ++k) B[k * N] = -128;  // the extreme column
  std::vector<float> sb(N), bias(N);
  for (int64_t n = 0; n < N; ++n) sb[n] = 0.001f * (n + 1), bias[n] = 0.25f * n;
  for (const kernels::QuantParams a : {kernels::QuantParams{0.031f, 0, false}, kernels::QuantParams{0.031f, 255, false},
                                       kernels::QuantParams{0.02f, 17, false}, kernels::QuantParams{0.02f, -5, true}}) {
    float qp[kQuantizeParams];
    QuantizeParams(a, qp);
    const std::vector<uint32_t> cp = ColumnParams(B.data(), K, N, sb.data(), N, bias.data(), a);
    PHX_CHECK(cp.size() == static_cast<size_t>(3 * kColParamCopies * N));
    for (int64_t m = 0; m < M; ++m) {
      std::vector<int32_t> qa(K);
      std::vector<int32_t> qa_shifted(K);
      for (int64_t k = 0; k < K; ++k) {
        const float x = m == 0 ? 1e30f : dx(rng);  // row 0 at the clamp (qa = qmax everywhere)
        qa[k] = kernels::Quantize(x, a);
        // what the quantize kernel computes from qparams (quantize.cc)
        float v = x / qp[0];
        v = v > qp[1] ? v : qp[1];
        v = v < qp[2] ? v : qp[2];
        qa_shifted[k] = static_cast<int32_t>(std::nearbyint(v)) + static_cast<int32_t>(qp[3]);
        PHX_CHECK(qa_shifted[k] >= -128 && qa_shifted[k] <= 127) << qa_shifted[k];
        PHX_CHECK(qa_shifted[k] == qa[k] - ActivationShift(a));
      }
      for (int64_t n = 0; n < N; ++n) {
        int64_t exact = 0, s = 0;
        for (int64_t k = 0; k < K; ++k) {
          exact += int64_t(qa[k] - a.zero_point) * B[k * N + n];
          s += int64_t(qa_shifted[k]) * B[k * N + n];
        }
        for (int c = 0; c < kColParamCopies; ++c) {
          const uint32_t corr = cp[(0 * kColParamCopies + c) * N + n];
          const int32_t acc = static_cast<int32_t>(static_cast<uint32_t>(s) + corr);  // the epilogue's wrapping add
          PHX_CHECK(acc == exact) << acc << " vs " << exact << " (n " << n << ", za " << a.zero_point << ")";
          float scale, b;
          std::memcpy(&scale, &cp[(1 * kColParamCopies + c) * N + n], 4);
          std::memcpy(&b, &cp[(2 * kColParamCopies + c) * N + n], 4);
          PHX_CHECK(scale == a.scale * sb[n] && b == bias[n]);
        }
      }
    }
  }
  // Without a bias: two rows; a per-tensor weight scale serves every column.
  const float one = 0.5f;
  const std::vector<uint32_t> cp = ColumnParams(B.data(), K, N, &one, 1, nullptr, kernels::QuantParams{0.1f, 0, true});
  PHX_CHECK(cp.size() == static_cast<size_t>(2 * kColParamCopies * N));
  float s6;
  std::memcpy(&s6, &cp[(1 * kColParamCopies + 3) * N + 6], 4);
  PHX_CHECK(s6 == 0.1f * 0.5f);
}

// ORT's static quantizer writes zero-point initializers of 0 for symmetric int8 weights: those are
// stored without zero points, so the call is the symmetric-weight one the NPU stages take (a
// non-zero zero point is kept; uint8 weights with zero point 128 are symmetric too).
PHX_TEST(all_zero_weight_zero_points_are_dropped) {
  struct Case {
    ONNXTensorElementDataType type;
    std::vector<uint8_t> zp;
    bool kept;
  };
  const std::vector<Case> cases = {{ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8, {0, 0, 0}, false},
                                   {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8, {0, 3, 0}, true},
                                   {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, {128, 128, 128}, false},
                                   {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, {128, 127, 128}, true},
                                   {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, {}, true}};  // uint8, no zp: -128 each
  for (const Case& c : cases) {
    GraphView g;
    const int q = g.AddValue("wq", c.type, {2, 3});
    auto qd = std::make_shared<ConstantData>();
    qd->dtype = c.type;
    qd->bytes = {1, 2, 3, 4, 5, 6};
    g.values[q].is_constant = true;
    g.values[q].data = qd;
    const int s = g.AddConstant("sb", {3}, {0.5, 0.25, 0.125}, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
    int z = -1;
    if (!c.zp.empty()) {
      z = g.AddValue("zb", c.type, {3});
      auto zd = std::make_shared<ConstantData>();
      zd->dtype = c.type;
      zd->bytes = c.zp;
      g.values[z].is_constant = true;
      g.values[z].data = zd;
    }
    const int w = g.AddValue("w", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, {2, 3});
    g.values[w].is_constant = true;
    g.values[w].dequantized = DequantizedConstant{q, s, z, 1};
    WeightStore store(std::make_shared<EmulatedDevice>(1), Precision::kBF16);
    Int8WeightRef ref;
    PHX_CHECK(store.Int8(g, w, &ref).ok());
    PHX_CHECK((ref.zero_points.buffer != kNoBuffer) == c.kept) << c.zp.size() << " kept " << c.kept;
  }
}

int main(int argc, char** argv) { return RunAll(argc, argv); }
