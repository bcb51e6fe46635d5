// The MatMul host runner's reading of a call (shapes, strides, bias, epilogue), shared with the
// INT8 MatMul runner, which takes the same operands and epilogue.
#pragma once

#include "common/host_call.h"
#include "matmul/matmul.h"

namespace phoenix {

// `a` from the call's output shape and operand views (A in[0], B in[1], bias in[2], residual
// in[3]) and `p`; the residual pointer is left to the caller (its element type is the call's).
Status MatMulArgsFromCall(const KernelCall& c, const MatMulParams& p, const HostBuffers& buffers,
                          kernels::MatMulArgs* a);

}  // namespace phoenix
