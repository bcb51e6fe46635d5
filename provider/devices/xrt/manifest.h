// The kernel manifest: which NPU kernels exist (op + shape + epilogue), where their xclbin and
// instruction files are, and the order of their buffer arguments. The XRT device claims a
// KernelCall only when the manifest has a kernel for exactly that call, so on the NPU the
// provider takes only the shapes it has kernels for.
//
// Format: kernels/manifest.schema.json (version 1); example: kernels/manifest.json.
// Relative artifact paths resolve against the manifest's folder.
//
// This file has no XRT dependency: it is always compiled (tests, `phoenix-npu doctor`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "device.h"
#include "common/status.h"

namespace phoenix::xrt_device {

constexpr int kManifestVersion = 1;

struct ManifestKernel {
  std::string op;                 // "matmul" | "layernorm" | "softmax" | "gelu"
  std::string dtype = "bf16";
  // matmul
  int64_t batch = 1, M = 0, K = 0, N = 0;
  std::string b_layout = "row_major";  // or "col_major" (B given as the transpose of a [N, K] tensor)
  std::string epilogue = "none";       // "none" | "gelu_erf" | "gelu_tanh"
  bool bias = false, residual = false;
  // layernorm / softmax
  int64_t rows = 0, cols = 0;
  bool beta = true;                    // layernorm
  double epsilon = 1e-5;               // layernorm: compiled into the kernel
  // gelu
  int64_t n = 0;
  std::string mode = "erf";            // gelu: "erf" | "tanh"
  // matmul alpha / softmax scale: compiled in; a call must use this value
  double scale = 1.0;
  // artifacts
  std::string xclbin, insts;           // as written in the manifest
  std::string xclbin_path, insts_path; // resolved against the manifest folder
  std::string kernel_name = "MLIR_AIE";
  std::vector<std::string> args;       // buffer arguments in kernel order (after opcode, instr, n)

  std::string Describe() const;        // "matmul 1500x512x1536 bias" etc.
};

struct Manifest {
  int version = 0;
  std::string device;                  // "npu1"
  std::string path, dir;
  std::vector<ManifestKernel> kernels;

  // The kernel that runs `call` exactly, or nullptr with the reason in *why_not.
  const ManifestKernel* Find(const KernelCall& call, std::string* why_not) const;
};

// Reads and validates the manifest. With check_artifacts, every xclbin / insts file must exist.
// Errors name the file, the line and column (bad JSON) or the kernel index and field.
Status LoadManifest(const std::string& path, Manifest* out, bool check_artifacts = true);
Status ParseManifest(const std::string& text, const std::string& path_for_errors, Manifest* out,
                     bool check_artifacts);

}  // namespace phoenix::xrt_device
