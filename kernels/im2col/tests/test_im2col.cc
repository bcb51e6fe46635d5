// Im2Col (im2col.h) at BF16 and BF16x3: every output element equals its definition
// y[b, t, c*k + j] = x[b, c, t*stride + j*dilation - pad] (0 outside), bits and NaN included.
#include <vector>

#include "common/testing.h"
#include "im2col/im2col.h"

using namespace phoenix;
using namespace phoenix::kernels;
using namespace phoenix::testing;

namespace {

template <typename T>
void Check(int64_t B, int64_t C, int64_t L, int64_t kernel, int64_t stride, int64_t dilation, int64_t pad, bool transposed) {
  TensorView xv = TensorView::Contiguous({B, C, L});
  if (transposed) {  // x stored as [B, L, C]
    xv.strides[1] = 1;
    xv.strides[2] = C;
  }
  const std::vector<bf16_t> raw = SpecialVec(B * C * L, 1.0f, 0.05);
  std::vector<T> x(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) x[i] = FromF32<T>(Bf16ToF32(raw[i]));
  Im2ColArgs a;
  a.kernel = kernel; a.stride = stride; a.dilation = dilation; a.pad_begin = pad;
  a.out_length = (L + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
  std::vector<T> y(B * a.out_length * C * kernel, FromF32<T>(7.0f));
  Im2Col(a, x.data(), xv, y.data(), 2);
  int64_t wrong = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < a.out_length; ++t)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t j = 0; j < kernel; ++j) {
          const int64_t pos = t * stride + j * dilation - pad;
          const T want = pos >= 0 && pos < L ? x[b * xv.strides[0] + c * xv.strides[1] + pos * xv.strides[2]] : T{};
          wrong += !SameValue(y[(b * a.out_length + t) * C * kernel + c * kernel + j], want);
        }
  PHX_CHECK(wrong == 0) << B << "x" << C << "x" << L << " k" << kernel << " s" << stride << ": " << wrong << " wrong";
}

template <typename T>
void AllShapes() {
  Check<T>(1, 80, 300, 3, 1, 1, 1, false);   // Whisper conv1
  Check<T>(2, 16, 300, 3, 2, 1, 1, true);    // conv2, input read through a transposed view
  Check<T>(1, 3, 17, 5, 3, 2, 4, false);     // dilation, padding past the input
  Check<T>(3, 1, 1, 1, 1, 1, 0, false);
}

}  // namespace

PHX_TEST(im2col_bf16_definition) { AllShapes<bf16_t>(); }
PHX_TEST(im2col_bf16x3_definition) { AllShapes<split_t>(); }

int main(int argc, char** argv) { return RunAll(argc, argv); }
