// Size arithmetic on dims that come from models (never trusted): overflow-checked products for
// the scratch buffers the dispatchers size, and the bound under which a 32-bit vector gather's
// lane offsets are exact. Internal linkage on purpose (also included by *_avx512.cc files; see
// batch_offsets.h).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace phoenix::kernels {

// a * b, or std::length_error naming `what` when it overflows int64 or is negative. Thrown only
// by dispatchers on the calling thread (never inside ParallelFor), so the provider's ABI wrapper
// turns it into an error status.
static inline int64_t CheckedMul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
    throw std::length_error(std::string("kernel scratch size overflows for ") + what);
  return r;
}
static inline int64_t CheckedAdd(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r))
    throw std::length_error(std::string("kernel scratch size overflows for ") + what);
  return r;
}

// True when a gather with 32-bit signed lane offsets lane * stride * elem_bytes (lane < lanes),
// each reading `access_bytes` past its offset, stays within int32: vpgatherdd / vgatherdps take
// the offsets as signed 32-bit values, so a larger stride would wrap and read elsewhere.
static constexpr bool GatherOffsetsFit(int64_t stride, int64_t elem_bytes, int lanes, int64_t access_bytes) {
  return stride >= 0 && elem_bytes > 0 && lanes >= 1 && access_bytes >= 0 && access_bytes <= INT32_MAX &&
         (lanes == 1 || stride <= (INT32_MAX - access_bytes) / (lanes - 1) / elem_bytes);
}

}  // namespace phoenix::kernels
