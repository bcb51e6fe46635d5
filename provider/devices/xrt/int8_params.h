// The host-computed parameters of the NPU INT8 MatMul's stages (kernels/matmul_int8/README.md,
// "On the NPU"; docs/npu.md 2d): what the XRT device writes into the "qparams" and "colparams"
// buffers before it starts a matmul_int8 manifest kernel. No XRT dependency: unit-tested in the C++
// tier (provider/tests/test_npu_bringup.cc) and mirrored by the stand-in simulation
// (npu_simulate.py), which checks the whole chain against the emulated MatMulInt8.
//
// upstream mm.cc's i8 GEMM is int8 x int8. Activations are uint8 (ORT's default, qa in [0, 255]) or
// int8; the quantize stage writes qa'' = qa - c_a (c_a = 128 for uint8, 0 for int8), which is
// int8. With da = c_a - za, the contract's exact sum is, for symmetric weights (zb = 0; weights with
// zero points: ZeroPointWeights below),
//   acc[m][n] = sum_k (qa - za) qb = sum_k qa'' qb + da * colsum[n],  colsum[n] = sum_k qb[k][n],
// an exact integer identity. The GEMM gives S = sum qa'' qb exactly (int32 accumulation, |S| <=
// 128 * 128 * K < 2^31 for K <= 33025, the contract's K limit); the epilogue adds
// corr[n] = da * colsum[n] in wrapping 32-bit arithmetic: the true acc fits int32 (K <= 33025), so
// the wrapped sum is exactly it, whatever wraps on the way (the vpdpbusd path's argument).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "matmul_int8/matmul_int8.h"

namespace phoenix::xrt_device {

constexpr int kQuantizeParams = 8;    // FP32 words of "qparams" (npu_model.QPARAMS)
constexpr int kColParamCopies = 4;    // each colparams row is stored once per compute row (npu_model.COL_PARAM_COPIES)

inline int32_t ActivationShift(const kernels::QuantParams& a) { return a.is_signed ? 0 : 128; }

// qparams: [sa, qmin - za, qmax - za, za - c_a, 0...] as FP32 (the integers are exact). The quantize
// kernel computes v = x / sa, clamps to [lo, hi] (NaN -> lo), rounds half to even and adds the
// shift: qa'' = qa - c_a, int8.
inline void QuantizeParams(const kernels::QuantParams& a, float out[kQuantizeParams]) {
  for (int i = 0; i < kQuantizeParams; ++i) out[i] = 0.0f;
  out[0] = a.scale;
  out[1] = static_cast<float>(kernels::QuantMin(a) - a.zero_point);
  out[2] = static_cast<float>(kernels::QuantMax(a) - a.zero_point);
  out[3] = static_cast<float>(a.zero_point - ActivationShift(a));
}

// Weights with zero points zb[n] (a manifest kernel with "weight_zero_points": docs/npu.md 2d). The
// contract's sum is sum_k (qa - za)(qb - zb) = sum_k qa'' (qb - zb) + da * (colsum[n] - K zb[n]), and
// qb - zb (up to 255 in magnitude) does not fit the int8 GEMM. So the GEMM runs on K' = 2K:
//   A' = [qa'' | qa''] (the quantize stage writes each row twice), B' = [qb; -zb] (rows K..2K-1 all -zb[n]),
//   sum_k' A' B' = sum_k qa'' qb - zb[n] sum_k qa'' = sum_k qa'' (qb - zb)   exactly
// (|partial sums| <= 2K * 128 * 128 < 2^31 for K <= 33025), and corr[n] = da * (colsum[n] - K zb[n]) mod 2^32.
// -zb must be int8: a zero point of -128 (uint8 weights with zero point 0) has no B' and stays on the host.
inline const char* WeightZeroPointRefusal(const int8_t* zb, int64_t channels) {
  for (int64_t i = 0; i < channels; ++i)
    if (zb[i] == -128)
      return "matmul_int8: a weight zero point of -128 (uint8 weights with zero point 0): -zb does not fit the "
             "INT8 GEMM's B' = [qb; -zb]";
  return nullptr;
}

// B' = [qb; -zb] as int8 [2K][N] row-major (zb: N values, or one per tensor).
inline std::vector<int8_t> ZeroPointWeights(const int8_t* B, int64_t K, int64_t N, const int8_t* zb,
                                            int64_t zb_channels) {
  std::vector<int8_t> out(static_cast<size_t>(2 * K * N));
  std::memcpy(out.data(), B, static_cast<size_t>(K * N));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      out[(K + k) * N + n] = static_cast<int8_t>(-zb[zb_channels == 1 ? 0 : n]);
  return out;
}

// colparams, [rows][kColParamCopies][N] 32-bit words, rows: corr[n] (int32), s_ab[n] = sa * sb[n]
// (FP32, one rounding: the contract's step 4), and with a bias bias[n] (FP32). B: int8 [K][N]
// row-major; b_scale: N scales (b_channels == N) or one; zb: the weights' zero points (N or one;
// nullptr: none), as above.
inline std::vector<uint32_t> ColumnParams(const int8_t* B, int64_t K, int64_t N, const float* b_scale,
                                          int64_t b_channels, const float* bias, const kernels::QuantParams& a,
                                          const int8_t* zb = nullptr, int64_t zb_channels = 1) {
  const int rows = bias ? 3 : 2;
  std::vector<uint32_t> out(static_cast<size_t>(rows) * kColParamCopies * N);
  std::vector<int64_t> colsum(static_cast<size_t>(N), 0);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) colsum[n] += B[k * N + n];
  if (zb)
    for (int64_t n = 0; n < N; ++n) colsum[n] -= K * zb[zb_channels == 1 ? 0 : n];   // colsum(qb - zb)
  const int64_t da = ActivationShift(a) - a.zero_point;
  for (int64_t n = 0; n < N; ++n) {
    const uint32_t corr = static_cast<uint32_t>(static_cast<uint64_t>(da * colsum[n]));  // mod 2^32
    const float s = a.scale * b_scale[b_channels == 1 ? 0 : n];
    uint32_t s_bits, b_bits = 0;
    std::memcpy(&s_bits, &s, 4);
    if (bias) std::memcpy(&b_bits, &bias[n], 4);
    for (int c = 0; c < kColParamCopies; ++c) {
      out[(0 * kColParamCopies + c) * N + n] = corr;
      out[(1 * kColParamCopies + c) * N + n] = s_bits;
      if (bias) out[(2 * kColParamCopies + c) * N + n] = b_bits;
    }
  }
  return out;
}

}  // namespace phoenix::xrt_device
