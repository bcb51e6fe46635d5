// FakeQuant (fake_quant.h) at BF16 and BF16x3: every element equals the definition through
// strided views, ties round to even, values saturate, NaN becomes the minimum, bad parameters
// are refused.
#include <cmath>
#include <stdexcept>
#include <vector>

#include "common/testing.h"
#include "fake_quant/fake_quant.h"

using namespace phoenix;
using namespace phoenix::kernels;
using namespace phoenix::testing;

namespace {

template <typename T>
void CheckDefinition(const QuantParams& q) {
  const int64_t rows = 37, cols = 29;
  const std::vector<bf16_t> raw = SpecialVec(rows * cols, 20.0f, 0.05);
  std::vector<T> x(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) x[i] = FromF32<T>(Bf16ToF32(raw[i]));
  // read x transposed, write y contiguous
  TensorView xv = TensorView::Contiguous({cols, rows});
  xv.shape[0] = rows;
  xv.shape[1] = cols;
  xv.strides[0] = 1;
  xv.strides[1] = rows;
  std::vector<T> y(rows * cols);
  FakeQuant(q, x.data(), xv, y.data(), TensorView::Contiguous({rows, cols}), 2);
  int64_t wrong = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const float v = ToF32(x[r + c * rows]);
      float want_f = v / q.scale;
      const float lo = static_cast<float>(QuantMin(q) - q.zero_point), hi = static_cast<float>(QuantMax(q) - q.zero_point);
      want_f = want_f > lo ? want_f : lo;
      want_f = want_f < hi ? want_f : hi;
      const int32_t qi = static_cast<int32_t>(std::nearbyint(want_f)) + q.zero_point;
      const T want = FromF32<T>(static_cast<float>(qi - q.zero_point) * q.scale);
      wrong += !SameValue(want, y[r * cols + c]);
    }
  PHX_CHECK(wrong == 0) << wrong << " elements differ";
}

}  // namespace

PHX_TEST(fake_quant_bf16_uint8_and_int8) {
  CheckDefinition<bf16_t>({0.05f, 128, false});
  CheckDefinition<bf16_t>({0.1f, 0, true});
  CheckDefinition<bf16_t>({3.0f, -7, true});
}

PHX_TEST(fake_quant_bf16x3) {
  CheckDefinition<split_t>({0.05f, 128, false});
  CheckDefinition<split_t>({0.1f, 0, true});
}

PHX_TEST(fake_quant_ties_saturation_and_nan) {
  const QuantParams q{1.0f, 0, true};
  const std::vector<float> in = {0.5f, 1.5f, 2.5f, -0.5f, 1000.0f, -1000.0f, NAN};
  const std::vector<float> want = {0.0f, 2.0f, 2.0f, -0.0f, 127.0f, -128.0f, -128.0f};
  std::vector<bf16_t> x(in.size()), y(in.size());
  for (size_t i = 0; i < in.size(); ++i) x[i] = F32ToBf16(in[i]);
  const TensorView v = TensorView::Contiguous({static_cast<int64_t>(in.size())});
  FakeQuant(q, x.data(), v, y.data(), v, 1);
  for (size_t i = 0; i < in.size(); ++i) PHX_CHECK(Bf16ToF32(y[i]) == want[i]) << i << ": " << Bf16ToF32(y[i]);
}

PHX_TEST(fake_quant_refuses_bad_parameters) {
  bf16_t x = 0, y = 0;
  const TensorView v = TensorView::Contiguous({1});
  bool thrown = false;
  try {
    FakeQuant({0.0f, 0, true}, &x, v, &y, v, 1);
  } catch (const std::invalid_argument&) {
    thrown = true;
  }
  PHX_CHECK(thrown);
  thrown = false;
  try {
    FakeQuant({1.0f, 300, false}, &x, v, &y, v, 1);
  } catch (const std::invalid_argument&) {
    thrown = true;
  }
  PHX_CHECK(thrown);
}

int main(int argc, char** argv) { return RunAll(argc, argv); }
