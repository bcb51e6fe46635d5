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

}  // namespace phoenix::kernels
