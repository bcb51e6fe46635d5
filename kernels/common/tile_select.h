// Run-time row count -> compile-time micro-tile: the AVX-512 MatMul bodies (BF16 and INT8) each
// instantiate their Tile<MR, NV> for MR = 1..kMaxRows and NV = 1, 2, and pick one per unit.
#pragma once

#include <type_traits>

namespace phoenix::kernels {

// make(std::integral_constant<int, MR>{}, nv) for MR = min(mr, MaxRows), mr >= 1.
template <int MaxRows, typename Make>
auto SelectByRows(int mr, int nv, Make make) {
  if constexpr (MaxRows == 1) {
    return make(std::integral_constant<int, 1>{}, nv);
  } else {
    if (mr >= MaxRows) return make(std::integral_constant<int, MaxRows>{}, nv);
    return SelectByRows<MaxRows - 1>(mr, nv, make);
  }
}

}  // namespace phoenix::kernels
