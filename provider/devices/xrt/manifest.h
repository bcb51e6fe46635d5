// The kernel manifest: which NPU kernels exist (op + shape + epilogue), the ONE xclbin that holds
// all of them (one hardware context), and per kernel its stages: the xclbin kernels (by name)
// that run one after the other, each with its instruction file and buffer-argument order.
//
// This is the only manifest parser of the project: the XRT device uses it, and Python reads it
// through the library (PhoenixNPU_LoadManifestJson, manifest_api.cc) for `phoenix-npu doctor`
// and `phoenix-npu plan --check`. The format is documented in docs/npu.md ("The kernel manifest");
// the example is kernels/manifest.json. Relative paths resolve against the manifest's folder.
//
// Files come from anywhere: the loader takes regular files only (a FIFO or /dev/zero is refused
// before it is read), at most kMaxManifestBytes, valid UTF-8, nesting at most 32 deep, finite
// numbers, and integers that fit the fields they go into; unknown fields are errors.
//
// No XRT dependency: always compiled (tests, doctor).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "device.h"
#include "common/status.h"

namespace phoenix::xrt_device {

constexpr int kManifestVersion = 2;
constexpr size_t kMaxManifestBytes = 1 << 20;  // 1 MiB: a manifest lists tens of kernels

// One xclbin kernel of a manifest kernel (a MatMul is a GEMM stage and an epilogue stage).
struct ManifestStage {
  std::string kernel_name;             // the kernel's name in the xclbin (unique in the manifest)
  std::string insts, insts_path;       // instruction file: as written / resolved
  std::vector<std::string> args;       // buffer arguments in kernel order (after opcode, instr, n)
  // Per-stage mode (docs/npu.md 5): this stage built alone into its own xclbin (one hw_context per
  // stage). Optional: empty when only the one-xclbin build exists.
  std::string xclbin, xclbin_path;
};

struct ManifestKernel {
  std::string op;                      // "matmul" | "matmul_int8" | "layernorm" | "softmax" | "gelu"
  std::string dtype = "bf16";          // "int8" for matmul_int8 (its default)
  // matmul, matmul_int8 (the INT8 MatMul of kernels/matmul_int8/README.md: quantize, GEMM, epilogue)
  int64_t batch = 1, M = 0, K = 0, N = 0;
  std::string b_layout = "row_major";  // or "col_major" (B given as the transpose of a [N, K] tensor)
  std::string epilogue = "none";       // "none" | "gelu_erf" | "gelu_tanh"
  bool bias = false, residual = false;
  // matmul_int8: for weights with zero points (docs/npu.md 2d): the quantize stage writes [qa'' | qa''],
  // the GEMM runs on K' = 2K against B' = [qb; -zb] (int8_params.h ZeroPointWeights). Calls with zero
  // points run only on such a kernel; calls without only on one without.
  bool weight_zero_points = false;
  // layernorm / softmax
  int64_t rows = 0, cols = 0;
  bool beta = true;                    // layernorm
  double epsilon = 1e-5;               // layernorm: compiled into the kernel
  // gelu
  int64_t n = 0;
  std::string mode = "erf";            // gelu: "erf" | "tanh"
  // matmul alpha / softmax scale: compiled in; a call must use this value
  double scale = 1.0;
  std::vector<ManifestStage> stages;

  std::string Describe() const;        // "matmul 1500x512x1536 +bias" etc.
  // Bytes of the FP32 scratch ("acc") a MatMul's GEMM stage writes and its epilogue reads.
  // matmul_int8: the int32 GEMM accumulator (its quantized A "qa" and parameters: QuantizedABytes etc.).
  int64_t ScratchBytes() const { return op == "matmul" || op == "matmul_int8" ? batch * M * N * 4 : 0; }
  int64_t QuantizedABytes() const { return op == "matmul_int8" ? batch * M * K * (weight_zero_points ? 2 : 1) : 0; }
};

struct Manifest {
  int version = 0;
  std::string device;                  // "npu1"
  std::string path, dir;
  std::string xclbin, xclbin_path;     // the one xclbin (as written / resolved)
  std::vector<ManifestKernel> kernels;
  // Which modes' artifacts exist (looked up at load time): the one xclbin; every stage's own xclbin.
  bool one_xclbin_built = false;
  bool per_stage_built = false;

  // The kernel that runs `call` exactly, or nullptr with the reason in *why_not.
  const ManifestKernel* Find(const KernelCall& call, std::string* why_not) const;
  // The manifest as normalised JSON (every field, defaults filled in, resolved paths).
  std::string ToJson() const;
};

// Reads and validates the manifest. With check_artifacts, every insts file and the xclbin(s) of
// at least one mode (the one xclbin, or every stage's own) must exist. Errors name the file, the line and column (bad JSON) or the kernel index and field.
Status LoadManifest(const std::string& path, Manifest* out, bool check_artifacts = true);
Status ParseManifest(const std::string& text, const std::string& path_for_errors, Manifest* out,
                     bool check_artifacts);

}  // namespace phoenix::xrt_device
