// Quantized MatMul calls on the host (matmul_int8.h). kMatMulInt8: A [b..., M, K] BF16, B
// [b..., K, N] INT8 weights with FP32 scales (per tensor or per output channel) and optional
// INT8 zero points; kMatMulInt8Activations: A and B BF16, both quantized while packing. Bias,
// residual and the output fake-quant as MatMul. BF16 only: the provider keeps precision=bf16x3
// on the dequantized path.
#include "matmul/host_call.h"
#include "matmul_int8/matmul_int8.h"

namespace phoenix {
namespace {

Status Run(const KernelCall& c, const MatMulInt8Params& p, const HostBuffers& buffers, int num_threads, bool weights) {
  if (c.precision != Precision::kBF16) return Status::Error("host kernel: " + c.label + ": INT8 MatMul runs at BF16 only");
  kernels::MatMulArgs a;
  PHX_RETURN_IF_ERROR(MatMulArgsFromCall(c, p.matmul, buffers, &a));
  a.residual = OperandData<bf16_t>(buffers, c.in[3]);
  kernels::Int8MatMulArgs q;
  q.a = p.a;
  q.quantize_output = p.quantize_output;
  q.out = p.out;
  const bf16_t* b_bf16 = nullptr;
  if (weights) {
    q.b_int8 = OperandData<const int8_t>(buffers, c.in[1]);
    q.b_scale = OperandData<const float>(buffers, c.in[4]);
    q.b_channels = c.in[4].view.NumElements();
    q.b_zero_point = OperandData<const int8_t>(buffers, c.in[5]);
  } else {
    q.b_act = p.b;
    b_bf16 = OperandData<const bf16_t>(buffers, c.in[1]);
  }
  kernels::MatMulInt8(a, q, OperandData<const bf16_t>(buffers, c.in[0]), b_bf16, OperandData<bf16_t>(buffers, c.out),
                      num_threads);
  return Status::OK();
}

}  // namespace

Status RunMatMulInt8Call(const KernelCall& c, const HostBuffers& buffers, int num_threads) {
  return Run(c, c.Params<MatMulInt8Params>(), buffers, num_threads, true);
}

Status RunMatMulInt8ActivationsCall(const KernelCall& c, const HostBuffers& buffers, int num_threads) {
  return Run(c, c.Params<MatMulInt8ActivationsParams>(), buffers, num_threads, false);
}

}  // namespace phoenix
