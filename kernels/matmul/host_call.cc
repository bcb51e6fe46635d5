// MatMul calls on the host: A [b..., M, K], B [b..., K, N], C [b..., M, N], optional FP32 bias [N]
// and residual [b..., M, N]; every operand strided.
#include "matmul/host_call.h"

namespace phoenix {

Status MatMulArgsFromCall(const KernelCall& c, const MatMulParams& p, const HostBuffers& buffers,
                          kernels::MatMulArgs* a) {
  const TensorView& o = c.out.view;
  const int r = o.rank;
  a->M = o.shape[r - 2];
  a->N = o.shape[r - 1];
  a->K = c.in[0].view.shape[r - 1];
  a->batch_rank = r - 2;
  if (a->batch_rank > kernels::kMaxBatchRank) return Status::Error("host kernel: too many batch dims in " + c.label);
  for (int d = 0; d < r - 2; ++d) a->batch_shape[d] = o.shape[d];
  MatrixStrides(c.in[0], r, a->a_batch_strides, &a->a_rs, &a->a_cs);
  MatrixStrides(c.in[1], r, a->b_batch_strides, &a->b_rs, &a->b_cs);
  MatrixStrides(c.out, r, a->c_batch_strides, &a->c_rs, &a->c_cs);
  MatrixStrides(c.in[3], r, a->r_batch_strides, &a->r_rs, &a->r_cs);
  a->alpha = p.alpha;
  a->bias = OperandData<const float>(buffers, c.in[2]);
  a->epilogue = p.epilogue;
  a->b_is_constant = p.b_is_constant;
  return Status::OK();
}

Status RunMatMulCall(const KernelCall& c, const HostBuffers& buffers, int num_threads) {
  kernels::MatMulArgs a;
  PHX_RETURN_IF_ERROR(MatMulArgsFromCall(c, c.Params<MatMulParams>(), buffers, &a));
  return ByPrecision(c, [&](auto tag) {
    using T = decltype(tag);
    a.residual = OperandData<T>(buffers, c.in[3]);
    kernels::MatMul(a, OperandData<T>(buffers, c.in[0]), OperandData<T>(buffers, c.in[1]), OperandData<T>(buffers, c.out),
                    num_threads);
    return Status::OK();
  });
}

}  // namespace phoenix
