// A strided view into a device buffer, in elements. Transpose and Reshape become views
// (permuted strides) rather than copies; a kernel that needs contiguous rows gets them from
// the compiler, which inserts a Copy only where a view cannot be consumed directly.
#pragma once

#include <cstdint>
#include <climits>
#include <string>
#include <vector>

namespace phoenix {

constexpr int kMaxRank = 8;

// A tensor shape (provider: dims may be symbolic, see provider/graph_view.h).
using Shape = std::vector<int64_t>;

struct TensorView {
  int rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t strides[kMaxRank] = {};
  int64_t offset = 0;  // elements from the start of the buffer

  static TensorView Contiguous(const std::vector<int64_t>& dims, int64_t offset = 0) {
    TensorView v;
    v.rank = static_cast<int>(dims.size());
    v.offset = offset;
    int64_t s = 1;
    for (int i = v.rank - 1; i >= 0; --i) {
      v.shape[i] = dims[i];
      v.strides[i] = s;
      // dims come from models: a stride past int64 saturates (and Extent() with it) instead of
      // wrapping, so the bounds checks against real buffers fail on such a view
      if (__builtin_mul_overflow(s, dims[i], &s)) s = INT64_MAX;
    }
    return v;
  }

  // Shapes and strides come from models: both products saturate at INT64_MAX instead of
  // wrapping, so a bounds check against a real buffer fails on them.
  int64_t NumElements() const {
    for (int i = 0; i < rank; ++i)
      if (shape[i] == 0) return 0;
    int64_t n = 1;
    for (int i = 0; i < rank; ++i)
      if (__builtin_mul_overflow(n, shape[i], &n)) return INT64_MAX;
    return n;
  }

  std::vector<int64_t> Dims() const { return std::vector<int64_t>(shape, shape + rank); }

  bool IsContiguous() const {
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; --i) {
      if (shape[i] != 1 && strides[i] != s) return false;
      s *= shape[i];
    }
    return true;
  }

  // Largest element index touched + 1 (for bounds checks); 0 for an empty view.
  int64_t Extent() const {
    if (NumElements() == 0) return 0;
    int64_t last = offset, step = 0;
    for (int i = 0; i < rank; ++i)
      if (__builtin_mul_overflow(shape[i] - 1, strides[i], &step) || __builtin_add_overflow(last, step, &last))
        return INT64_MAX;
    return last == INT64_MAX ? INT64_MAX : last + 1;
  }

  std::string ToString() const {
    std::string s = "[";
    for (int i = 0; i < rank; ++i) s += (i ? "," : "") + std::to_string(shape[i]);
    s += "]/[";
    for (int i = 0; i < rank; ++i) s += (i ? "," : "") + std::to_string(strides[i]);
    return s + "]+" + std::to_string(offset);
  }
};

}  // namespace phoenix
