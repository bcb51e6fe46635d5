// Fused attention calls on the host: Q [b..., M, D], K [b..., N, D], V [b..., N, Dv] -> O [b..., M, Dv].
#include "attention/attention.h"
#include "common/host_call.h"

namespace phoenix {

Status RunAttentionCall(const KernelCall& c, const HostBuffers& buffers, int num_threads) {
  const TensorView& o = c.out.view;
  const int r = o.rank;
  kernels::AttentionArgs a;
  a.M = o.shape[r - 2];
  a.Dv = o.shape[r - 1];
  a.N = c.in[1].view.shape[r - 2];
  a.D = c.in[0].view.shape[r - 1];
  a.batch_rank = r - 2;
  if (a.batch_rank > kernels::kMaxAttentionBatchRank) return Status::Error("host kernel: too many batch dims in " + c.label);
  for (int d = 0; d < r - 2; ++d) a.batch_shape[d] = o.shape[d];
  MatrixStrides(c.in[0], r, a.q_batch_strides, &a.q_rs, &a.q_cs);
  MatrixStrides(c.in[1], r, a.k_batch_strides, &a.k_rs, &a.k_cs);
  MatrixStrides(c.in[2], r, a.v_batch_strides, &a.v_rs, &a.v_cs);
  MatrixStrides(c.out, r, a.o_batch_strides, &a.o_rs, &a.o_cs);
  a.scale = c.Params<AttentionParams>().scale;
  return ByPrecision(c, [&](auto tag) {
    using T = decltype(tag);
    kernels::Attention(a, OperandData<T>(buffers, c.in[0]), OperandData<T>(buffers, c.in[1]),
                       OperandData<T>(buffers, c.in[2]), OperandData<T>(buffers, c.out), num_threads);
    return Status::OK();
  });
}

}  // namespace phoenix
