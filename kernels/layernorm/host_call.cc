// LayerNorm calls on the host: x [rows, cols] contiguous, gamma / beta FP32 [cols].
#include "common/host_call.h"
#include "layernorm/layernorm.h"

namespace phoenix {

Status RunLayerNormCall(const KernelCall& c, const HostBuffers& buffers, int num_threads) {
  const TensorView& y = c.out.view;
  kernels::LayerNormArgs a;
  a.cols = y.rank ? y.shape[y.rank - 1] : 1;
  a.rows = a.cols ? y.NumElements() / a.cols : 0;
  a.epsilon = c.Params<LayerNormParams>().epsilon;
  a.gamma = OperandData<const float>(buffers, c.in[1]);
  a.beta = OperandData<const float>(buffers, c.in[2]);
  return ByPrecision(c, [&](auto tag) {
    using T = decltype(tag);
    kernels::LayerNorm(a, OperandData<T>(buffers, c.in[0]), OperandData<T>(buffers, c.out), num_threads);
    return Status::OK();
  });
}

}  // namespace phoenix
