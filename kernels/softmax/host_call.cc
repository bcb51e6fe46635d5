// Softmax calls on the host: x and y [rows, cols] contiguous, softmax(scale * x) per row.
#include "common/host_call.h"
#include "softmax/softmax.h"

namespace phoenix {

Status RunSoftmaxCall(const KernelCall& c, const HostBuffers& buffers, int num_threads) {
  const TensorView& y = c.out.view;
  kernels::SoftmaxArgs a;
  a.cols = y.rank ? y.shape[y.rank - 1] : 1;
  a.rows = a.cols ? y.NumElements() / a.cols : 0;
  a.scale = c.Params<SoftmaxParams>().scale;
  return ByPrecision(c, [&](auto tag) {
    using T = decltype(tag);
    kernels::Softmax(a, OperandData<T>(buffers, c.in[0]), OperandData<T>(buffers, c.out), num_threads);
    return Status::OK();
  });
}

}  // namespace phoenix
