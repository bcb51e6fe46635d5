// Batched MatMul C = epilogue(alpha * A @ B + bias) + residual, BF16 in and out, FP32
// accumulation, one rounding to BF16 at the end. The BF16x3 form (split_t operands) is the same
// product over K' = 3K: A' = [A_hi | A_hi | A_lo], B' = [B_hi ; B_lo ; B_hi], i.e.
// hi*hi + hi*lo + lo*hi (lo*lo, below 2^-16 relative, is dropped), one rounding to hi + lo.
// Inf / NaN elements contribute only through hi*hi (lo = 0 and the cross-term copy of hi = 0), so
// Inf and NaN propagate as in the FP32 product (no Inf * 0 from a zero lo). Every operand is strided, so the heads of
// attention (Reshape + Transpose) and K^T are read in place. See README.md in this folder.
#pragma once
#include <cstddef>
#include <climits>
#include <cstdint>
#include "common/bf16.h"
#include "gelu/gelu.h"

namespace phoenix::kernels {

constexpr int kMaxBatchRank = 4;

enum class Epilogue : int { kNone = 0, kGeluErf = 1, kGeluTanh = 2 };

struct MatMulArgs {
  int64_t M = 0, N = 0, K = 0;
  int batch_rank = 0;
  int64_t batch_shape[kMaxBatchRank] = {};
  // element (b, i, j) of X is at X + sum(b_d * x_batch_strides[d]) + i * x_rs + j * x_cs
  int64_t a_batch_strides[kMaxBatchRank] = {}, a_rs = 0, a_cs = 1;  // A[b, m, k]
  int64_t b_batch_strides[kMaxBatchRank] = {}, b_rs = 0, b_cs = 1;  // B[b, k, n]
  int64_t c_batch_strides[kMaxBatchRank] = {}, c_rs = 0, c_cs = 1;  // C[b, m, n]
  int64_t r_batch_strides[kMaxBatchRank] = {}, r_rs = 0, r_cs = 1;  // residual[b, m, n]
  float alpha = 1.0f;
  const float* bias = nullptr;       // [N], FP32, optional
  Epilogue epilogue = Epilogue::kNone;
  const void* residual = nullptr;    // optional, same element type as C, added after the epilogue
  // B is a constant weight that never changes for the life of this pointer (lets the
  // implementation keep a pre-packed copy keyed by its address).
  bool b_is_constant = false;

  int64_t BatchCount() const {
    int64_t n = 1;  // saturates instead of wrapping (dims come from models)
    for (int d = 0; d < batch_rank; ++d)
      if (__builtin_mul_overflow(n, batch_shape[d], &n)) return INT64_MAX;
    return n;
  }
};

void MatMul(const MatMulArgs& a, const bf16_t* A, const bf16_t* B, bf16_t* C, int num_threads);
void MatMul(const MatMulArgs& a, const split_t* A, const split_t* B, split_t* C, int num_threads);

// Drops any pre-packed copy of constant B operands that lie in [begin, begin + bytes): the
// device calls it before freeing a weight buffer, since a new buffer may reuse the address.
void ReleasePackedWeights(const void* begin, size_t bytes);

// Epilogue for one accumulator value (FP32 in, FP32 out, before the final BF16 rounding).
inline float ApplyEpilogue(float acc, float alpha, const float* bias, int64_t n, Epilogue e) {
  float v = acc * alpha;
  if (bias) v += bias[n];
  if (e == Epilogue::kGeluErf) v = GeluF32(v, GeluMode::kErf);
  else if (e == Epilogue::kGeluTanh) v = GeluF32(v, GeluMode::kTanh);
  return v;
}

}  // namespace phoenix::kernels
