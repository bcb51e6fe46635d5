#include "devices/host_kernels.h"

#include "kernel_kinds.h"

#include "attention/attention.h"
#include "elementwise/elementwise.h"
#include "gelu/gelu.h"
#include "im2col/im2col.h"
#include "layernorm/layernorm.h"
#include "matmul/matmul.h"
#include "softmax/softmax.h"

namespace phoenix {
namespace {

// Every operand must lie inside its buffer: a plan bug must fail here, not corrupt memory.
Status Check(const HostBuffers& buffers, const Operand& op, size_t elem_size, const char* what, const KernelCall& call) {
  const HostBuffer b = op.buffer >= 0 ? buffers(op.buffer) : HostBuffer{};
  if (b.data == nullptr)
    return Status::Error(std::string("host kernel: ") + what + " of " + call.label + " has no buffer");
  for (int d = 0; d < op.view.rank; ++d)
    if (op.view.strides[d] < 0) return Status::Error(std::string("host kernel: negative stride in ") + call.label);
  if (static_cast<size_t>(op.view.Extent()) * elem_size > b.bytes)
    return Status::Error(std::string("host kernel: ") + what + " of " + call.label + " overruns its buffer");
  return Status::OK();
}

template <typename T>
T* At(uint8_t* base, const TensorView& v) { return reinterpret_cast<T*>(base) + v.offset; }

// A batched matrix view [b..., rows, cols] as the kernels take it: batch strides, row stride,
// column stride (an absent operand leaves them untouched).
void MatrixStrides(const Operand& op, int rank, int64_t* batch_strides, int64_t* rs, int64_t* cs) {
  if (!op.present()) return;
  for (int d = 0; d < rank - 2; ++d) batch_strides[d] = op.view.strides[d];
  *rs = op.view.strides[rank - 2];
  *cs = op.view.strides[rank - 1];
}

// Runs the call with its BF16-slot operands holding elements of type T (bf16_t or split_t).
template <typename T>
Status RunAs(const KernelCall& c, const HostBuffers& buffers, int num_threads) {
  using namespace kernels;
  const char* names[4] = {"input 0", "input 1", "input 2", "input 3"};
  for (int i = 0; i < 4; ++i) {
    if (!c.in[i].present()) continue;
    PHX_RETURN_IF_ERROR(Check(buffers, c.in[i], SlotElementSize(c.kind, i, c.precision), names[i], c));
  }
  PHX_RETURN_IF_ERROR(Check(buffers, c.out, SlotElementSize(c.kind, kOutputSlot, c.precision), "output", c));
  auto elems = [&](const Operand& o) { return At<T>(buffers(o.buffer).data, o.view); };
  auto f32 = [&](const Operand& o) { return o.present() ? At<const float>(buffers(o.buffer).data, o.view) : nullptr; };
  const TensorView& ov = c.out.view;
  switch (c.kind) {
    case KernelKind::kLayerNorm: {
      LayerNormArgs a;
      a.cols = ov.rank ? ov.shape[ov.rank - 1] : 1;
      a.rows = a.cols ? ov.NumElements() / a.cols : 0;
      a.epsilon = c.epsilon;
      a.gamma = f32(c.in[1]);
      a.beta = f32(c.in[2]);
      LayerNorm(a, elems(c.in[0]), elems(c.out), num_threads);
      return Status::OK();
    }
    case KernelKind::kSoftmax: {
      SoftmaxArgs a;
      a.cols = ov.rank ? ov.shape[ov.rank - 1] : 1;
      a.rows = a.cols ? ov.NumElements() / a.cols : 0;
      a.scale = c.scale;
      Softmax(a, elems(c.in[0]), elems(c.out), num_threads);
      return Status::OK();
    }
    case KernelKind::kGelu:
      Gelu(static_cast<GeluMode>(c.mode), ov.NumElements(), elems(c.in[0]), elems(c.out), num_threads);
      return Status::OK();
    case KernelKind::kBinary: {
      TensorView av = c.in[0].view, bv = c.in[1].view, yv = ov;
      av.offset = bv.offset = yv.offset = 0;
      Binary(static_cast<BinaryOp>(c.mode), elems(c.in[0]), av, elems(c.in[1]), bv, elems(c.out), yv, num_threads);
      return Status::OK();
    }
    case KernelKind::kBinaryScalar: {
      TensorView av = c.in[0].view, yv = ov;
      av.offset = yv.offset = 0;
      BinaryScalar(static_cast<BinaryOp>(c.mode & 15), elems(c.in[0]), av, c.scale, (c.mode & 16) != 0,
                   elems(c.out), yv, num_threads);
      return Status::OK();
    }
    case KernelKind::kCopy: {
      TensorView xv = c.in[0].view, yv = ov;
      xv.offset = yv.offset = 0;
      Copy(elems(c.in[0]), xv, elems(c.out), yv, num_threads);
      return Status::OK();
    }
    case KernelKind::kIm2Col: {
      Im2ColArgs a;
      a.kernel = c.conv.kernel;
      a.stride = c.conv.stride;
      a.dilation = c.conv.dilation;
      a.pad_begin = c.conv.pad_begin;
      a.out_length = ov.shape[1];
      TensorView xv = c.in[0].view;
      xv.offset = 0;
      Im2Col(a, elems(c.in[0]), xv, elems(c.out), num_threads);
      return Status::OK();
    }
    case KernelKind::kAttention: {
      const int r = ov.rank;
      AttentionArgs a;
      a.M = ov.shape[r - 2];
      a.Dv = ov.shape[r - 1];
      a.N = c.in[1].view.shape[r - 2];
      a.D = c.in[0].view.shape[r - 1];
      a.batch_rank = r - 2;
      if (a.batch_rank > kMaxAttentionBatchRank) return Status::Error("host kernel: too many batch dims in " + c.label);
      for (int d = 0; d < r - 2; ++d) a.batch_shape[d] = ov.shape[d];
      MatrixStrides(c.in[0], r, a.q_batch_strides, &a.q_rs, &a.q_cs);
      MatrixStrides(c.in[1], r, a.k_batch_strides, &a.k_rs, &a.k_cs);
      MatrixStrides(c.in[2], r, a.v_batch_strides, &a.v_rs, &a.v_cs);
      MatrixStrides(c.out, r, a.o_batch_strides, &a.o_rs, &a.o_cs);
      a.scale = c.scale;
      Attention(a, elems(c.in[0]), elems(c.in[1]), elems(c.in[2]), elems(c.out), num_threads);
      return Status::OK();
    }
    case KernelKind::kMatMul: {
      const int r = ov.rank;
      MatMulArgs a;
      a.M = ov.shape[r - 2];
      a.N = ov.shape[r - 1];
      a.K = c.in[0].view.shape[r - 1];
      a.batch_rank = r - 2;
      for (int d = 0; d < r - 2; ++d) a.batch_shape[d] = ov.shape[d];
      MatrixStrides(c.in[0], r, a.a_batch_strides, &a.a_rs, &a.a_cs);
      MatrixStrides(c.in[1], r, a.b_batch_strides, &a.b_rs, &a.b_cs);
      MatrixStrides(c.out, r, a.c_batch_strides, &a.c_rs, &a.c_cs);
      MatrixStrides(c.in[3], r, a.r_batch_strides, &a.r_rs, &a.r_cs);
      if (c.in[3].present()) a.residual = elems(c.in[3]);
      a.alpha = c.scale;
      a.bias = f32(c.in[2]);
      a.epilogue = static_cast<Epilogue>(c.mode);
      a.b_is_constant = c.b_is_constant;
      MatMul(a, elems(c.in[0]), elems(c.in[1]), elems(c.out), num_threads);
      return Status::OK();
    }
    default:
      return Status::Error("host kernel: unknown kernel kind");
  }
}

}  // namespace

Status RunOnHost(const KernelCall& c, const HostBuffers& buffers, int num_threads) {
  return c.precision == Precision::kBF16x3 ? RunAs<split_t>(c, buffers, num_threads)
                                           : RunAs<bf16_t>(c, buffers, num_threads);
}

}  // namespace phoenix
