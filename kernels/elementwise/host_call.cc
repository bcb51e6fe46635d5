// Binary, BinaryScalar and Copy calls on the host: every operand a strided view of the
// output's shape (broadcast dims have stride 0).
#include "common/host_call.h"
#include "elementwise/elementwise.h"

namespace phoenix {

Status RunBinaryCall(const KernelCall& c, const HostBuffers& buffers, int num_threads) {
  return ByPrecision(c, [&](auto tag) {
    using T = decltype(tag);
    kernels::Binary(c.Params<BinaryParams>().op, OperandData<T>(buffers, c.in[0]), OffsetFree(c.in[0]),
                    OperandData<T>(buffers, c.in[1]), OffsetFree(c.in[1]), OperandData<T>(buffers, c.out),
                    OffsetFree(c.out), num_threads);
    return Status::OK();
  });
}

Status RunBinaryScalarCall(const KernelCall& c, const HostBuffers& buffers, int num_threads) {
  const BinaryScalarParams& p = c.Params<BinaryScalarParams>();
  return ByPrecision(c, [&](auto tag) {
    using T = decltype(tag);
    kernels::BinaryScalar(p.op, OperandData<T>(buffers, c.in[0]), OffsetFree(c.in[0]), p.scalar, p.scalar_first,
                          OperandData<T>(buffers, c.out), OffsetFree(c.out), num_threads);
    return Status::OK();
  });
}

Status RunCopyCall(const KernelCall& c, const HostBuffers& buffers, int num_threads) {
  return ByPrecision(c, [&](auto tag) {
    using T = decltype(tag);
    kernels::Copy(OperandData<T>(buffers, c.in[0]), OffsetFree(c.in[0]), OperandData<T>(buffers, c.out),
                  OffsetFree(c.out), num_threads);
    return Status::OK();
  });
}

}  // namespace phoenix
