// The host side shared by every kernel folder's test.cpp (kernels/<op>/aie/, mlir-aie
// programming-example style): command line, the XRT sequence the provider's XRT device uses
// (provider/devices/xrt/xrt_device.cc: register the xclbin, one hw_context, opcode 3,
// instructions in group_id(1), data in host-only BOs, abort a run that times out), random BF16
// data, and the comparison with the project's reference kernels (kernels/<op>/emulated.cc).
// Needs XRT >= 2.21.75 (kernels/common/aie/toolchain.json).
// NOT YET RUN: no NPU here. Compiled (-fsyntax-only) against XRT 2.21.75's public headers by
// tests/test_npu_kernel_folders.py when they are available.
//
// A test.cpp includes its generated params.h first (PHX_KERNEL_NAME, PHX_ARGS and the stage's
// shape, written by its design.py from kernels/manifest.json), then this header.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/bf16.h"
#include "xrt/experimental/xrt_xclbin.h"
#include "xrt/xrt_bo.h"
#include "xrt/xrt_device.h"
#include "xrt/xrt_hw_context.h"
#include "xrt/xrt_kernel.h"

namespace phoenix::aie_test {

constexpr int kSkipped = 77;                   // the automake / ctest "skipped" exit code
constexpr char kAccel[] = "/dev/accel/accel0";  // the amdxdna device node
constexpr unsigned kOpcode = 3;                 // mlir-aie's "run the instruction stream" opcode
constexpr std::chrono::milliseconds kTimeout{10000};

struct Options {
  std::string xclbin = "build/final.xclbin";
  std::string insts = "build/insts.bin";
  std::string kernel;
  uint32_t seed = 1;
  int verbosity = 1;
};

// -x xclbin  -i insts  -k kernel name  -s seed  -v verbosity (as mlir-aie's test.cpp files).
inline Options ParseArgs(int argc, char** argv, const char* default_kernel) {
  Options o;
  o.kernel = default_kernel;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc || a.size() != 2 || a[0] != '-' || std::string("xiksv").find(a[1]) == std::string::npos) {
      std::fprintf(stderr, "usage: %s [-x xclbin] [-i insts.bin] [-k kernel_name] [-s seed] [-v level]\n", argv[0]);
      std::exit(2);
    }
    const std::string v = argv[++i];
    switch (a[1]) {
      case 'x': o.xclbin = v; break;
      case 'i': o.insts = v; break;
      case 'k': o.kernel = v; break;
      case 's': o.seed = static_cast<uint32_t>(std::stoul(v)); break;
      default: o.verbosity = std::stoi(v); break;
    }
  }
  return o;
}

// Without an NPU the test cannot run: say so and exit with kSkipped (never a pass).
inline int SkipWithoutNpu() {
  struct stat st;
  if (stat(kAccel, &st) == 0) return 0;
  std::printf("SKIPPED: no NPU (%s absent); `phoenix-npu doctor` says what is missing\n", kAccel);
  return kSkipped;
}

inline std::vector<uint32_t> LoadInsts(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw std::runtime_error("cannot read instruction file " + path);
  const std::streamsize size = f.tellg();
  if (size <= 0 || size % 4 != 0) throw std::runtime_error(path + " is empty or not a multiple of 4 bytes");
  std::vector<uint32_t> words(static_cast<size_t>(size) / 4);
  f.seekg(0);
  if (!f.read(reinterpret_cast<char*>(words.data()), size)) throw std::runtime_error("cannot read " + path);
  return words;
}

// One runtime argument of the xclbin kernel, in kernel order (params.h: PHX_ARGS).
struct Arg {
  const char* name;
  size_t elements;
  size_t elem_bytes;
};

// One xclbin kernel on device 0 with a host-only buffer per runtime argument.
class NpuKernel {
 public:
  NpuKernel(const Options& o, std::initializer_list<Arg> args)
      : args_(args), device_(0u), xclbin_(o.xclbin), name_(o.kernel) {
    device_.register_xclbin(xclbin_);
    ctx_ = xrt::hw_context(device_, xclbin_.get_uuid());
    kernel_ = xrt::kernel(ctx_, o.kernel);
    const std::vector<uint32_t> words = LoadInsts(o.insts);
    n_instr_ = static_cast<uint32_t>(words.size());
    instr_ = xrt::bo(device_, words.size() * sizeof(uint32_t), xrt::bo::flags::cacheable, kernel_.group_id(1));
    std::memcpy(instr_.map<void*>(), words.data(), words.size() * sizeof(uint32_t));
    instr_.sync(XCL_BO_SYNC_BO_TO_DEVICE);
    for (size_t i = 0; i < args_.size(); ++i)
      bos_.emplace_back(device_, args_[i].elements * args_[i].elem_bytes, xrt::bo::flags::host_only,
                        kernel_.group_id(static_cast<int>(3 + i)));
    if (o.verbosity > 0)
      std::printf("%s: %s from %s (%u instruction words, %zu arguments)\n", name_.c_str(),
                  device_.get_info<xrt::info::device::name>().c_str(), o.xclbin.c_str(), n_instr_, args_.size());
  }

  // The mapped buffer of argument `name`, checked against the element size the caller expects.
  template <typename T>
  T* Map(const char* name) {
    for (size_t i = 0; i < args_.size(); ++i) {
      if (std::strcmp(args_[i].name, name) != 0) continue;
      if (args_[i].elem_bytes != sizeof(T))
        throw std::runtime_error(std::string("argument ") + name + " has " + std::to_string(args_[i].elem_bytes) +
                                 "-byte elements");
      return bos_[i].map<T*>();
    }
    throw std::runtime_error(std::string("the kernel has no argument ") + name);
  }

  size_t Elements(const char* name) const {
    for (const Arg& a : args_)
      if (std::strcmp(a.name, name) == 0) return a.elements;
    throw std::runtime_error(std::string("the kernel has no argument ") + name);
  }

  // Every buffer to the device, one run, every buffer back. A run that times out is aborted
  // (XRT leaves that to the caller) and reported as a failure.
  void Run() {
    for (xrt::bo& b : bos_) b.sync(XCL_BO_SYNC_BO_TO_DEVICE);
    xrt::run run(kernel_);
    run.set_arg(0, kOpcode);
    run.set_arg(1, instr_);
    run.set_arg(2, n_instr_);
    for (size_t i = 0; i < bos_.size(); ++i) run.set_arg(static_cast<int>(3 + i), bos_[i]);
    const auto t0 = std::chrono::steady_clock::now();
    run.start();
    const ert_cmd_state state = run.wait(kTimeout);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (state == ERT_CMD_STATE_TIMEOUT) {
      run.abort();
      throw std::runtime_error(name_ + " timed out after 10 s and was aborted (a design over an npu1 limit "
                               "usually hangs: `phoenix-npu plan --check`)");
    }
    if (state != ERT_CMD_STATE_COMPLETED)
      throw std::runtime_error(name_ + " did not complete (ert_cmd_state " + std::to_string(state) + ")");
    for (xrt::bo& b : bos_) b.sync(XCL_BO_SYNC_BO_FROM_DEVICE);
    std::printf("%s: one run, %.3f ms (measured, host wall clock incl. launch)\n", name_.c_str(), ms);
  }

 private:
  std::vector<Arg> args_;
  xrt::device device_;
  xrt::xclbin xclbin_;
  xrt::hw_context ctx_;
  xrt::kernel kernel_;
  xrt::bo instr_;
  uint32_t n_instr_ = 0;
  std::vector<xrt::bo> bos_;
  std::string name_;
};

// --- Data and comparison -----------------------------------------------------------------------
inline void FillBf16(bf16_t* p, size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  for (size_t i = 0; i < n; ++i) p[i] = F32ToBf16(d(rng));
}

inline void FillF32(float* p, size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  for (size_t i = 0; i < n; ++i) p[i] = d(rng);
}

// Distance in BF16 units in the last place (adjacent values are 1 apart, +0 and -0 are 0 apart);
// two NaNs are 0 apart, a NaN and a number infinitely far.
inline double UlpDistance(bf16_t a, bf16_t b) {
  const bool na = std::isnan(Bf16ToF32(a)), nb = std::isnan(Bf16ToF32(b));
  if (na || nb) return na && nb ? 0.0 : INFINITY;
  auto ordered = [](bf16_t v) { return (v & 0x8000) ? -static_cast<int>(v & 0x7fff) : static_cast<int>(v); };
  return std::fabs(static_cast<double>(ordered(a) - ordered(b)));
}

// An element passes when it is within `max_ulp` BF16 ulps of the reference, or within `atol`
// of it (outputs near zero whose FP32 steps cancel: GELU's tail, tiny softmax probabilities).
struct Tolerance {
  double max_ulp;
  double atol;
};

// Compares n BF16 outputs with the reference; prints max ulp, max abs / rel error and the first
// failures; true when every element passes.
inline bool CompareBf16(const char* what, const bf16_t* got, const bf16_t* want, size_t n, Tolerance tol,
                        int verbosity) {
  double max_ulp = 0, max_abs = 0, max_rel = 0;
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    const double u = UlpDistance(got[i], want[i]);
    const double g = Bf16ToF32(got[i]), w = Bf16ToF32(want[i]);
    const double abs_err = std::isnan(g) || std::isnan(w) ? (u == 0 ? 0 : INFINITY) : std::fabs(g - w);
    max_ulp = std::fmax(max_ulp, u);
    max_abs = std::fmax(max_abs, abs_err);
    if (w != 0 && std::isfinite(abs_err)) max_rel = std::fmax(max_rel, abs_err / std::fabs(w));
    if (u > tol.max_ulp && !(abs_err <= tol.atol)) {
      if (bad++ < 10 && verbosity > 0)
        std::printf("  %s[%zu]: got %.8g, want %.8g (%.0f ulp)\n", what, i, g, w, u);
    }
  }
  std::printf("%s: %zu values, max %.0f BF16 ulp, max abs error %.3g, max rel error %.3g; %zu outside "
              "(%.0f ulp or %.3g abs)\n", what, n, max_ulp, max_abs, max_rel, bad, tol.max_ulp, tol.atol);
  return bad == 0;
}

// An output the kernel never writes must fail: fill it with NaN first.
inline void FillNan(bf16_t* p, size_t n) { std::fill(p, p + n, bf16_t(0xFFC1)); }

// The frame of every test.cpp: options, exit 77 without an NPU, the kernel loaded, then `body`
// (fill the inputs, compute the reference, npu.Run(), compare); an exception is a failure with
// its message. Prints PASS! / FAIL.
inline int RunHostTest(int argc, char** argv, const char* kernel, std::initializer_list<Arg> args,
                       const std::function<bool(NpuKernel&, const Options&)>& body) {
  const Options opt = ParseArgs(argc, argv, kernel);
  if (const int skip = SkipWithoutNpu()) return skip;
  try {
    NpuKernel npu(opt, args);
    const bool ok = body(npu, opt);
    std::printf(ok ? "PASS!\n" : "FAIL.\n");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::printf("FAIL: %s\n", e.what());
    return 1;
  }
}

}  // namespace phoenix::aie_test
