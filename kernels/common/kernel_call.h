// One kernel invocation as the compiler emits it and every device runs it: the kind, typed
// parameters for that kind, and strided operands in device buffers. Each kind's slots (names,
// element types per precision, manifest argument order) are described once in
// common/kernel_kinds.h; each kernel's host runner (the CPU implementation of a call) lives in
// its folder, kernels/<op>/host_call.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <variant>

#include "common/precision.h"
#include "common/tensor_view.h"
#include "elementwise/elementwise.h"
#include "gelu/gelu.h"
#include "matmul/matmul.h"

namespace phoenix {

using BufferId = int32_t;
constexpr BufferId kNoBuffer = -1;

enum class KernelKind : int { kLayerNorm = 0, kMatMul, kSoftmax, kGelu, kBinary, kBinaryScalar, kCopy, kIm2Col, kAttention, kCount };

struct Operand {
  BufferId buffer = kNoBuffer;
  TensorView view;  // in elements of the slot's type (common/kernel_kinds.h)
  bool present() const { return buffer != kNoBuffer; }
};

// Parameters per kind (a call holds exactly the one of its kind).
struct LayerNormParams { float epsilon = 1e-5f; };
struct MatMulParams {
  float alpha = 1.0f;  // C = epilogue(alpha * A @ B + bias) + residual
  kernels::Epilogue epilogue = kernels::Epilogue::kNone;
  bool b_is_constant = false;  // B is a resident weight (the kernel may keep it pre-packed)
};
struct SoftmaxParams { float scale = 1.0f; };  // softmax(scale * x)
struct GeluParams { kernels::GeluMode mode = kernels::GeluMode::kErf; };
struct BinaryParams { kernels::BinaryOp op = kernels::BinaryOp::kAdd; };
struct BinaryScalarParams {
  kernels::BinaryOp op = kernels::BinaryOp::kMul;
  float scalar = 1.0f;        // exact FP32
  bool scalar_first = false;  // s (op) a instead of a (op) s
};
struct CopyParams {};
struct Im2ColParams { int64_t kernel = 1, stride = 1, dilation = 1, pad_begin = 0; };
struct AttentionParams { float scale = 1.0f; };  // softmax(scale * Q K^T) V

// In KernelKind order: the variant's index is the kind.
using KernelParams = std::variant<LayerNormParams, MatMulParams, SoftmaxParams, GeluParams, BinaryParams,
                                  BinaryScalarParams, CopyParams, Im2ColParams, AttentionParams>;
static_assert(std::variant_size_v<KernelParams> == static_cast<size_t>(KernelKind::kCount), "one parameter type per kind");

struct KernelCall {
  KernelParams params = CopyParams{};
  Precision precision = Precision::kBF16;  // what activation slots hold: bf16_t or split_t
  Operand in[4];
  Operand out;
  std::string label;  // the ONNX node(s) this call implements, for traces and errors

  KernelKind kind() const { return static_cast<KernelKind>(params.index()); }
  template <typename P> const P& Params() const { return std::get<P>(params); }
  template <typename P> P& Params() { return std::get<P>(params); }
};

// Host-visible memory of a device buffer, for the host runners.
struct HostBuffer {
  uint8_t* data = nullptr;
  size_t bytes = 0;
};
using HostBuffers = std::function<HostBuffer(BufferId)>;

}  // namespace phoenix
