// Helpers shared by the host runners (kernels/<op>/host_call.cc): typed pointers into a call's
// operands, and the precision dispatch. Operands were bounds-checked by RunOnHost.
#pragma once

#include "common/bf16.h"
#include "common/kernel_call.h"
#include "common/status.h"

namespace phoenix {

// The operand's first element as T (the view's offset applied).
template <typename T>
T* OperandData(const HostBuffers& buffers, const Operand& op) {
  return op.present() ? reinterpret_cast<T*>(buffers(op.buffer).data) + op.view.offset : nullptr;
}

// The operand's view with its offset moved into the pointer (kernels take offset-free views).
inline TensorView OffsetFree(const Operand& op) {
  TensorView v = op.view;
  v.offset = 0;
  return v;
}

// A batched matrix view [b..., rows, cols] as the kernels take it: batch strides, row stride,
// column stride (an absent operand leaves them untouched).
inline void MatrixStrides(const Operand& op, int rank, int64_t* batch_strides, int64_t* rs, int64_t* cs) {
  if (!op.present()) return;
  for (int d = 0; d < rank - 2; ++d) batch_strides[d] = op.view.strides[d];
  *rs = op.view.strides[rank - 2];
  *cs = op.view.strides[rank - 1];
}

// Calls run.template operator()<T>() with T = bf16_t or split_t, by the call's precision.
template <typename Run>
Status ByPrecision(const KernelCall& call, Run&& run) {
  return call.precision == Precision::kBF16x3 ? run(split_t{}) : run(bf16_t{});
}

}  // namespace phoenix
