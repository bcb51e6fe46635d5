// The BF16 operands of a BF16x3 product (split_bf16.h): a dot product of K split_t pairs is the
// BF16 dot product of length K' = 3K of
//   A' = [A_hi | A_hi* | A_lo]   (the left operand: rows of A, Q, P)
//   B' = [B_hi ; B_lo ; B_hi*]   (the right operand: columns of B, K^T, V)
// i.e. hi*hi + hi*lo + lo*hi (lo*lo, below 2^-16 relative, dropped). hi* is hi for finite values
// and 0 for Inf / NaN, whose lo is 0 too: they contribute through hi*hi only, so Inf and NaN
// propagate as in the FP32 product (no Inf * 0 from a zero lo). Used by MatMul and Attention,
// scalar (here) and AVX-512 (avx512::SplitRow in kernel_isa.h) alike.
#pragma once

#include <cstdint>

#include "common/bf16.h"

namespace phoenix::kernels {

inline int64_t ProductK(const bf16_t*, int64_t K) { return K; }
inline int64_t ProductK(const split_t*, int64_t K) { return 3 * K; }

// Element k of A' / B' (k < ProductK) for an operand read at x[i * stride], i < K.
inline bf16_t APrime(const bf16_t* x, int64_t k, int64_t /*K*/, int64_t stride) { return x[k * stride]; }
inline bf16_t BPrime(const bf16_t* x, int64_t k, int64_t /*K*/, int64_t stride) { return x[k * stride]; }
inline bf16_t APrime(const split_t* x, int64_t k, int64_t K, int64_t stride) {
  if (k < K) return SplitHi(x[k * stride]);
  if (k < 2 * K) return SplitHiCross(x[(k - K) * stride]);
  return SplitLo(x[(k - 2 * K) * stride]);
}
inline bf16_t BPrime(const split_t* x, int64_t k, int64_t K, int64_t stride) {
  if (k < K) return SplitHi(x[k * stride]);
  if (k < 2 * K) return SplitLo(x[(k - K) * stride]);
  return SplitHiCross(x[(k - 2 * K) * stride]);
}

}  // namespace phoenix::kernels
