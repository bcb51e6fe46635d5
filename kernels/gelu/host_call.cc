// GELU calls on the host: x and y contiguous, same element count.
#include "common/host_call.h"
#include "gelu/gelu.h"

namespace phoenix {

Status RunGeluCall(const KernelCall& c, const HostBuffers& buffers, int num_threads) {
  return ByPrecision(c, [&](auto tag) {
    using T = decltype(tag);
    kernels::Gelu(c.Params<GeluParams>().mode, c.out.view.NumElements(), OperandData<T>(buffers, c.in[0]),
                  OperandData<T>(buffers, c.out), num_threads);
    return Status::OK();
  });
}

}  // namespace phoenix
