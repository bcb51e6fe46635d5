// Im2Col calls on the host: x [B, C, L] any view, y [B, L_out, C * kernel] contiguous.
#include "common/host_call.h"
#include "im2col/im2col.h"

namespace phoenix {

Status RunIm2ColCall(const KernelCall& c, const HostBuffers& buffers, int num_threads) {
  const Im2ColParams& p = c.Params<Im2ColParams>();
  kernels::Im2ColArgs a;
  a.kernel = p.kernel;
  a.stride = p.stride;
  a.dilation = p.dilation;
  a.pad_begin = p.pad_begin;
  a.out_length = c.out.view.shape[1];
  return ByPrecision(c, [&](auto tag) {
    using T = decltype(tag);
    kernels::Im2Col(a, OperandData<T>(buffers, c.in[0]), OffsetFree(c.in[0]), OperandData<T>(buffers, c.out),
                    num_threads);
    return Status::OK();
  });
}

}  // namespace phoenix
