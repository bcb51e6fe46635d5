// Emulated Im2Col: a strided gather with zeros for the padding, written once over the element
// type (BF16 or BF16x3: 2 or 4 bytes moved, never rounded).
#include "common/parallel.h"
#include "im2col/im2col.h"

namespace phoenix::kernels {
namespace {

template <typename T>
void Gather(const Im2ColArgs& a, const T* x, const TensorView& xv, T* y, int num_threads) {
  const int64_t B = xv.shape[0], C = xv.shape[1], L = xv.shape[2];
  const int64_t row = C * a.kernel;
  ParallelFor(B * a.out_length, num_threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / a.out_length, t = r % a.out_length;
      T* dst = y + r * row;
      for (int64_t c = 0; c < C; ++c) {
        const T* src = x + xv.offset + b * xv.strides[0] + c * xv.strides[1];
        for (int64_t j = 0; j < a.kernel; ++j) {
          const int64_t pos = t * a.stride + j * a.dilation - a.pad_begin;
          dst[c * a.kernel + j] = (pos >= 0 && pos < L) ? src[pos * xv.strides[2]] : T{};  // T{}: +0
        }
      }
    }
  });
}

}  // namespace

void Im2Col(const Im2ColArgs& a, const bf16_t* x, const TensorView& xv, bf16_t* y, int num_threads) {
  Gather(a, x, xv, y, num_threads);
}
void Im2Col(const Im2ColArgs& a, const split_t* x, const TensorView& xv, split_t* y, int num_threads) {
  Gather(a, x, xv, y, num_threads);
}

}  // namespace phoenix::kernels
