// Fused attention for one batch of heads: O = softmax(scale * Q K^T) V, without writing the
// scores to memory. Numerics (the NPU kernel keeps the scores of a row block on the tile):
//   S = scale * (Q . K^T), FP32 accumulation of BF16 products, kept in FP32 (never rounded);
//   P = softmax(S) per row in FP32: row max, KernelExp(S - max), FP32 sum, times 1/sum;
//   P is rounded to BF16 once (it is the BF16 operand of the second matmul);
//   O = P . V with FP32 accumulation, rounded to BF16 once.
// A NaN anywhere in a row of S makes that row of P NaN (as the CPU EP's Softmax does).
// BF16x3 (split_t operands, common/split_operands.h): S = Q'.K'^T over 3D, P rounded to a hi + lo
// pair instead of BF16, O = P'.V' over 3N, O rounded to hi + lo; S stays FP32 as above.
#pragma once
#include <climits>
#include <cstdint>
#include "common/bf16.h"

namespace phoenix::kernels {

constexpr int kMaxAttentionBatchRank = 4;

struct AttentionArgs {
  int64_t M = 0;   // queries per head
  int64_t N = 0;   // keys per head
  int64_t D = 0;   // head dim of Q and K
  int64_t Dv = 0;  // head dim of V and O
  int batch_rank = 0;
  int64_t batch_shape[kMaxAttentionBatchRank] = {};
  // Strided operands, element (b..., i, j) at X + sum(b_d * x_batch_strides[d]) + i * x_rs + j * x_cs:
  int64_t q_batch_strides[kMaxAttentionBatchRank] = {}, q_rs = 0, q_cs = 1;  // Q [b, M, D]
  int64_t k_batch_strides[kMaxAttentionBatchRank] = {}, k_rs = 0, k_cs = 1;  // K [b, N, D] (row n is key n)
  int64_t v_batch_strides[kMaxAttentionBatchRank] = {}, v_rs = 0, v_cs = 1;  // V [b, N, Dv]
  int64_t o_batch_strides[kMaxAttentionBatchRank] = {}, o_rs = 0, o_cs = 1;  // O [b, M, Dv]
  float scale = 1.0f;

  int64_t BatchCount() const {
    int64_t n = 1;  // saturates instead of wrapping (dims come from models)
    for (int d = 0; d < batch_rank; ++d)
      if (__builtin_mul_overflow(n, batch_shape[d], &n)) return INT64_MAX;
    return n;
  }
};

void Attention(const AttentionArgs& a, const bf16_t* Q, const bf16_t* K, const bf16_t* V, bf16_t* O,
               int num_threads);
void Attention(const AttentionArgs& a, const split_t* Q, const split_t* K, const split_t* V, split_t* O,
               int num_threads);

}  // namespace phoenix::kernels
