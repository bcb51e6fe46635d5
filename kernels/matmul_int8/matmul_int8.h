// INT8 MatMul for quantized (QDQ) models: C = BF16(fakequant?(epilogue(acc * sa * sb[n]) + residual))
// with acc the EXACT integer sum of (qa - za) (qb - zb), activations BF16 between kernels. The
// numerics are defined once in README.md in this folder (the emulated kernels and the AIE INT8
// kernel implement that text); the provider lowers QuantizeLinear / DequantizeLinear around
// MatMul / Gemm onto it.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "common/bf16.h"
#include "matmul/matmul.h"

namespace phoenix::kernels {

// Packed INT8 weights are cached by address like BF16 ones: ReleasePackedWeights (matmul.h)
// drops them when their buffer is freed.

// One static (per-tensor) quantization: q = saturate(round_half_even(x / scale) + zero_point) to
// int8 ([-128, 127], is_signed) or uint8 ([0, 255]); x = (q - zero_point) * scale back.
struct QuantParams {
  float scale = 1.0f;
  int32_t zero_point = 0;  // within the type's range
  bool is_signed = true;
};

// What MatMulInt8 needs besides MatMulArgs (shapes, batch dims, strides of A, B, C and the
// residual, alpha, bias, GELU epilogue, b_is_constant), which keep their MatMul meaning.
struct Int8MatMulArgs {
  QuantParams a;  // A (BF16) is quantized with these while packing
  // B, one of:
  //  * weights (b_int8 != nullptr): int8 elements at the MatMulArgs strides, dequantized as
  //    (q - b_zero_point[n]) * b_scale[n] with per-channel (b_channels == N) or per-tensor
  //    (b_channels == 1) scales; b_zero_point may be nullptr (all 0). uint8 weights become int8
  //    by subtracting 128 from q and from the zero point (the same dequantized values);
  //  * activations (b_int8 == nullptr): the BF16 B given to MatMulInt8, quantized while packing
  //    with b_act (per tensor).
  const int8_t* b_int8 = nullptr;
  const float* b_scale = nullptr;
  const int8_t* b_zero_point = nullptr;
  int64_t b_channels = 1;
  QuantParams b_act;
  // Optional fake quantization of the output (a following QuantizeLinear -> DequantizeLinear).
  bool quantize_output = false;
  QuantParams out;
};

// Largest K for which every partial sum of the integer accumulator fits in int32
// (|qa - za|, |qb - zb| <= 255): MatMulInt8 refuses larger K (std::invalid_argument).
constexpr int64_t kMaxInt8K = 2147483647 / (255 * 255);  // 33025

// What MatMulInt8 accepts, as one predicate: the kernel throws std::invalid_argument with this
// text and the provider's capability refuses the node with it, so the two cannot drift. nullptr
// when accepted. Weight scales (b_scales, b_channels of them; nullptr for activation x activation)
// may be 0 (a pruned channel) or negative: they only multiply the exact integer sum. NaN and Inf
// may not: the kernel would give NaN where the dequantized product gives +-Inf and the reverse.
inline const char* Int8MatMulRefusal(int64_t K, const float* b_scales, int64_t b_channels) {
  if (K > kMaxInt8K) return "K > 33025 would overflow the INT8 MatMul's int32 accumulator";
  for (int64_t c = 0; b_scales && c < b_channels; ++c)
    if (!std::isfinite(b_scales[c])) return "an INT8 weight scale is NaN or infinite";
  return nullptr;
}

// The same for a quantization the kernel applies (A, activation B, output): x / scale needs a
// finite scale > 0, the zero point its type's range.
inline const char* QuantParamsRefusal(const QuantParams& p) {
  if (!(std::isfinite(p.scale) && p.scale > 0.0f)) return "scale must be finite and > 0";
  if (p.zero_point < (p.is_signed ? -128 : 0) || p.zero_point > (p.is_signed ? 127 : 255))
    return "zero point out of its type's range";
  return nullptr;
}

// C [b, M, N] (BF16) from A [b, M, K] (BF16) and B (see Int8MatMulArgs; B_bf16 is the BF16 B for
// the activation x activation case, else unused and may be nullptr). Throws std::invalid_argument
// on what Int8MatMulRefusal or QuantParamsRefusal refuse.
void MatMulInt8(const MatMulArgs& a, const Int8MatMulArgs& q, const bf16_t* A, const bf16_t* B_bf16, bf16_t* C,
                int num_threads);

// The reference's single steps, shared by every implementation of the contract.
inline int32_t QuantMin(const QuantParams& p) { return p.is_signed ? -128 : 0; }
inline int32_t QuantMax(const QuantParams& p) { return p.is_signed ? 127 : 255; }
// saturate(round_half_even(x / scale) + zero_point), as ORT's CPU QuantizeLinear (MLAS): the FP32
// quotient is clamped to [qmin - zp, qmax - zp] first (a NaN quotient gives qmin), then rounded.
inline int32_t Quantize(float x, const QuantParams& p) {
  float v = x / p.scale;
  const float lo = static_cast<float>(QuantMin(p) - p.zero_point), hi = static_cast<float>(QuantMax(p) - p.zero_point);
  v = v > lo ? v : lo;  // NaN -> lo
  v = v < hi ? v : hi;
  return static_cast<int32_t>(std::nearbyint(v)) + p.zero_point;
}
inline float Dequantize(int32_t q, const QuantParams& p) { return static_cast<float>(q - p.zero_point) * p.scale; }

}  // namespace phoenix::kernels
