// FakeQuant calls on the host: x and y strided views of one shape.
#include "common/host_call.h"
#include "fake_quant/fake_quant.h"

namespace phoenix {

Status RunFakeQuantCall(const KernelCall& c, const HostBuffers& buffers, int num_threads) {
  const kernels::QuantParams& q = c.Params<FakeQuantParams>().q;
  return ByPrecision(c, [&](auto tag) {
    using T = decltype(tag);
    kernels::FakeQuant(q, OperandData<T>(buffers, c.in[0]), OffsetFree(c.in[0]), OperandData<T>(buffers, c.out),
                       OffsetFree(c.out), num_threads);
    return Status::OK();
  });
}

}  // namespace phoenix
