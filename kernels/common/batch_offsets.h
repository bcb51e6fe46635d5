// Element offsets of one batch entry in several strided operands: `index` is a flat batch
// number, row-major over `shape[0..rank)`; out[k] = sum_d i_d * strides[k][d].
// Internal linkage on purpose: this header is also included by *_avx512.cc files, and an
// inline function with external linkage could be merged with their AVX-512 compile of it.
#pragma once

#include <cstdint>

namespace phoenix::kernels {

static inline void BatchOffsets(int64_t index, int rank, const int64_t* shape, int operands,
                                const int64_t* const* strides, int64_t* out) {
  for (int k = 0; k < operands; ++k) out[k] = 0;
  for (int d = rank - 1; d >= 0; --d) {
    const int64_t i = index % shape[d];
    index /= shape[d];
    for (int k = 0; k < operands; ++k) out[k] += i * strides[k][d];
  }
}

// The A and B element offsets of every batch of a MatMul call (MatMulArgs: a_batch_strides,
// b_batch_strides, batch_rank, batch_shape) into a_off[0..batches), b_off[0..batches); true when
// B is not the same for every batch.
template <typename Args>
static inline bool MatMulBatchOffsets(const Args& a, int64_t batches, int64_t* a_off, int64_t* b_off) {
  bool b_batched = false;
  for (int64_t bi = 0; bi < batches; ++bi) {
    const int64_t* strides[2] = {a.a_batch_strides, a.b_batch_strides};
    int64_t off[2];
    BatchOffsets(bi, a.batch_rank, a.batch_shape, 2, strides, off);
    a_off[bi] = off[0];
    b_off[bi] = off[1];
    b_batched |= off[1] != b_off[0];
  }
  return b_batched;
}

}  // namespace phoenix::kernels
