// XrtDevice: phoenix::Device on the Phoenix NPU through XRT (xrt::hw_context). See xrt_device.h
// for the design. NOT YET RUN ON HARDWARE: compiled only where a modern XRT is installed
// (cmake/XrtDevice.cmake); written against XRT's public C++ API and mlir-aie's host examples.
#include "devices/xrt/xrt_device.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "devices/xrt/manifest.h"
#include "common/kernel_kinds.h"
#include "xrt/xrt_bo.h"
#include "xrt/xrt_device.h"
#include "xrt/xrt_kernel.h"
#if __has_include("xrt/xrt_hw_context.h")
#include "xrt/xrt_hw_context.h"
#elif __has_include("xrt/experimental/xrt_hw_context.h")
#include "xrt/experimental/xrt_hw_context.h"
#else
#include "experimental/xrt_hw_context.h"
#endif
#if __has_include("xrt/experimental/xrt_xclbin.h")
#include "xrt/experimental/xrt_xclbin.h"
#elif __has_include("xrt/xrt_xclbin.h")
#include "xrt/xrt_xclbin.h"
#else
#include "experimental/xrt_xclbin.h"
#endif

namespace phoenix {
namespace {

using xrt_device::Manifest;
using xrt_device::ManifestKernel;

constexpr const char* kAccel = "/dev/accel/accel0";
constexpr unsigned kOpcode = 3;  // mlir-aie NPU designs: "run the instruction stream in the BO"
constexpr auto kRunTimeout = std::chrono::milliseconds(10000);

const char* kInstallHint =
    "check that the amdxdna driver is loaded (lsmod | grep amdxdna), that /dev/accel/accel0 is readable "
    "and writable by you (group 'render'), that the NPU firmware is in /lib/firmware/amdnpu, and that "
    "XRT from AMD's xdna-driver build is installed (source /opt/xilinx/xrt/setup.sh); `phoenix-npu doctor` "
    "checks all of these";

Status XrtError(const std::string& what, const std::exception& e) {
  return Status::Error("XRT: " + what + " failed: " + e.what() + " (" + kInstallHint + ")");
}

std::string DefaultManifestPath() {
  if (const char* env = std::getenv("PHOENIX_NPU_MANIFEST"); env && *env) return env;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&DefaultManifestPath), &info) && info.dli_fname) {
    std::string lib = info.dli_fname;
    size_t slash = lib.find_last_of('/');
    // The wheel ships the library in phoenix_npu/lib/ and the manifest in phoenix_npu/kernels/.
    return (slash == std::string::npos ? std::string(".") : lib.substr(0, slash)) + "/../kernels/manifest.json";
  }
  return "kernels/manifest.json";
}

struct Context {          // one registered xclbin
  std::string path;
  xrt::xclbin xclbin;
  xrt::hw_context ctx;
};

struct Loaded {           // one manifest kernel, ready to run
  const ManifestKernel* entry = nullptr;
  int context = -1;
  xrt::kernel kernel;
  xrt::bo instr;
  uint32_t n_instr = 0;
  xrt::run run;
  bool in_flight = false;
};

struct Buffer {
  xrt::bo bo;
  size_t bytes = 0;
  uint8_t* host = nullptr;
};

class XrtDevice final : public Device {
 public:
  std::string Kind() const override { return "npu"; }
  std::string Description() const override { return description_; }

  bool CanRun(const KernelCall& call, std::string* why_not) const override {
    if (call.precision != Precision::kBF16) {  // device_factory refuses precision=bf16x3 on the NPU; this keeps it so
      if (why_not) *why_not = "the NPU kernels are BF16 only (no BF16x3)";
      return false;
    }
    return manifest_.Find(call, why_not) != nullptr;
  }

  Status Allocate(size_t bytes, BufferId* id) override {
    const size_t rounded = (bytes + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
    try {
      Buffer b;
      b.bo = xrt::bo(device_, rounded == 0 ? kBufferAlignment : rounded, xrt::bo::flags::host_only, data_group_);
      b.bytes = rounded;
      b.host = b.bo.map<uint8_t*>();
      buffers_.push_back(std::move(b));
    } catch (const std::exception& e) {
      return XrtError("allocating a " + std::to_string(rounded) + "-byte buffer object", e);
    }
    *id = static_cast<BufferId>(buffers_.size() - 1);
    return Status::OK();
  }

  void Free(BufferId id) override {
    if (id < 0 || static_cast<size_t>(id) >= buffers_.size()) return;
    for (auto it = sub_.begin(); it != sub_.end();) it = std::get<0>(it->first) == id ? sub_.erase(it) : std::next(it);
    buffers_[id] = Buffer{};
  }

  uint8_t* Map(BufferId id) override {
    return id >= 0 && static_cast<size_t>(id) < buffers_.size() ? buffers_[id].host : nullptr;
  }

  Status SyncToDevice(BufferId id, size_t offset, size_t bytes) override { return Sync(id, offset, bytes, true); }
  Status SyncFromDevice(BufferId id, size_t offset, size_t bytes) override { return Sync(id, offset, bytes, false); }

  Status Launch(const KernelCall& call) override {
    std::string why;
    const ManifestKernel* entry = manifest_.Find(call, &why);
    if (!entry) return Status::Error("NPU: " + why);
    Loaded& k = loaded_[by_entry_.at(entry)];
    // The plan's calls depend on each other. Runs on one hw_context execute in submission order;
    // across contexts nothing is promised, so wait before switching context or reusing a run.
    if (k.in_flight || (last_context_ >= 0 && last_context_ != k.context)) PHX_RETURN_IF_ERROR(Wait());
    try {
      k.run.set_arg(0, kOpcode);
      k.run.set_arg(1, k.instr);
      k.run.set_arg(2, k.n_instr);
      for (size_t i = 0; i < entry->args.size(); ++i) {
        xrt::bo* bo = nullptr;
        PHX_RETURN_IF_ERROR(ArgBo(call, entry->args[i], &bo));
        k.run.set_arg(static_cast<int>(3 + i), *bo);
      }
      k.run.start();
    } catch (const std::exception& e) {
      return XrtError("starting " + entry->Describe(), e);
    }
    k.in_flight = true;
    in_flight_.push_back(&k);
    last_context_ = k.context;
    return Status::OK();
  }

  Status Wait() override {
    Status result;
    for (Loaded* k : in_flight_) {
      try {
        auto state = k->run.wait(kRunTimeout);
        if (state != ERT_CMD_STATE_COMPLETED && result.ok())
          result = Status::Error("NPU: " + k->entry->Describe() + " did not complete (state " + std::to_string(state) +
                                 (state == ERT_CMD_STATE_TIMEOUT ? ", timed out after 10 s" : "") +
                                 "); the xclbin/insts may not match this kernel's shape, or the NPU firmware is too old (" +
                                 kInstallHint + ")");
      } catch (const std::exception& e) {
        if (result.ok()) result = XrtError("waiting for " + k->entry->Describe(), e);
      }
      k->in_flight = false;
    }
    in_flight_.clear();  // keeps its capacity: no allocation per run after warm-up
    last_context_ = -1;
    return result;
  }

  Status Open(const std::string& manifest_path) {
    const std::string path = manifest_path.empty() ? DefaultManifestPath() : manifest_path;
    PHX_RETURN_IF_ERROR(xrt_device::LoadManifest(path, &manifest_, /*check_artifacts=*/true));
    if (manifest_.kernels.empty()) return Status::Error("kernel manifest " + path + " lists no kernels");
    try {
      device_ = xrt::device(0u);
    } catch (const std::exception& e) {
      return XrtError("opening NPU device 0 (" + std::string(kAccel) + ")", e);
    }
    std::map<std::string, int> context_of;
    loaded_.reserve(manifest_.kernels.size());
    for (const ManifestKernel& e : manifest_.kernels) {
      Loaded k;
      k.entry = &e;
      try {
        auto it = context_of.find(e.xclbin_path);
        if (it == context_of.end()) {
          Context c;
          c.path = e.xclbin_path;
          c.xclbin = xrt::xclbin(e.xclbin_path);
          device_.register_xclbin(c.xclbin);
          c.ctx = xrt::hw_context(device_, c.xclbin.get_uuid());
          contexts_.push_back(std::move(c));
          it = context_of.emplace(e.xclbin_path, static_cast<int>(contexts_.size() - 1)).first;
        }
        k.context = it->second;
        Context& c = contexts_[k.context];
        std::string name;
        for (auto& xk : c.xclbin.get_kernels())
          if (xk.get_name().rfind(e.kernel_name, 0) == 0) {
            name = xk.get_name();
            break;
          }
        if (name.empty())
          return Status::Error("NPU: " + e.xclbin_path + " has no kernel named " + e.kernel_name + "* (see the manifest's kernel_name)");
        k.kernel = xrt::kernel(c.ctx, name);
        std::vector<uint32_t> words;
        PHX_RETURN_IF_ERROR(ReadInstructions(e.insts_path, &words));
        k.n_instr = static_cast<uint32_t>(words.size());
        k.instr = xrt::bo(device_, words.size() * sizeof(uint32_t), xrt::bo::flags::cacheable, k.kernel.group_id(1));
        std::memcpy(k.instr.map<void*>(), words.data(), words.size() * sizeof(uint32_t));
        k.instr.sync(XCL_BO_SYNC_BO_TO_DEVICE);
        k.run = xrt::run(k.kernel);
        if (loaded_.empty()) data_group_ = k.kernel.group_id(3);
      } catch (const std::exception& ex) {
        return XrtError("loading " + e.Describe() + " from " + e.xclbin_path, ex);
      }
      by_entry_[&e] = loaded_.size();
      loaded_.push_back(std::move(k));
    }
    std::string name = "Phoenix NPU";
    try {
      name = device_.get_info<xrt::info::device::name>();
    } catch (const std::exception&) {
    }
    description_ = name + " " + kAccel + " via XRT, " + std::to_string(loaded_.size()) + " kernels in " +
                   std::to_string(contexts_.size()) + " xclbins (" + path + ")";
    return Status::OK();
  }

 private:
  static Status ReadInstructions(const std::string& path, std::vector<uint32_t>* words) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) return Status::Error("NPU: cannot read instruction file " + path);
    const std::streamsize size = f.tellg();
    if (size <= 0 || size % 4 != 0)
      return Status::Error("NPU: instruction file " + path + " is empty or not a multiple of 4 bytes");
    words->resize(static_cast<size_t>(size) / 4);
    f.seekg(0);
    if (!f.read(reinterpret_cast<char*>(words->data()), size)) return Status::Error("NPU: cannot read " + path);
    return Status::OK();
  }

  Status Sync(BufferId id, size_t offset, size_t bytes, bool to_device) {
    if (id < 0 || static_cast<size_t>(id) >= buffers_.size() || !buffers_[id].host)
      return Status::Error("NPU: sync of an unknown buffer");
    if (bytes == 0) return Status::OK();
    try {
      buffers_[id].bo.sync(to_device ? XCL_BO_SYNC_BO_TO_DEVICE : XCL_BO_SYNC_BO_FROM_DEVICE, bytes, offset);
    } catch (const std::exception& e) {
      return XrtError(std::string("syncing a buffer ") + (to_device ? "to" : "from") + " the device", e);
    }
    return Status::OK();
  }

  // The operand a manifest argument name refers to, and its element size.
  static const Operand* OperandFor(const KernelCall& c, const std::string& name, size_t* elem) {
    *elem = 2;
    if (name == "A" || name == "x") return &c.in[0];
    if (name == "B") return &c.in[1];
    if (name == "bias" || name == "beta") {  // FP32 slots
      *elem = 4;
      return &c.in[2];
    }
    if (name == "gamma") {
      *elem = 4;
      return &c.in[1];
    }
    if (name == "residual") return &c.in[3];
    if (name == "C" || name == "y") return &c.out;
    return nullptr;
  }

  // A sub-buffer for the operand's byte range, created once and cached.
  Status ArgBo(const KernelCall& call, const std::string& name, xrt::bo** out) {
    size_t elem;
    const Operand* op = OperandFor(call, name, &elem);
    if (!op || !op->present() || op->buffer < 0 || static_cast<size_t>(op->buffer) >= buffers_.size())
      return Status::Error("NPU: argument " + name + " of " + std::string(KernelKindName(call.kind())) + " is missing");
    Buffer& b = buffers_[op->buffer];
    const size_t first = static_cast<size_t>(op->view.offset) * elem;
    const size_t size = static_cast<size_t>(op->view.Extent() - op->view.offset) * elem;
    if (first + size > b.bytes) return Status::Error("NPU: argument " + name + " lies outside its buffer");
    if (first == 0 && size == b.bytes) {
      *out = &b.bo;
      return Status::OK();
    }
    auto key = std::make_tuple(op->buffer, first, size);
    auto it = sub_.find(key);
    if (it == sub_.end()) {
      try {
        it = sub_.emplace(key, xrt::bo(b.bo, size, first)).first;  // first run only
      } catch (const std::exception& e) {
        return XrtError("making a sub-buffer (offset " + std::to_string(first) + ", " + std::to_string(size) + " bytes)", e);
      }
    }
    *out = &it->second;
    return Status::OK();
  }

  Manifest manifest_;
  xrt::device device_;
  xrt::memory_group data_group_ = 0;
  std::vector<Context> contexts_;
  std::vector<Loaded> loaded_;
  std::unordered_map<const ManifestKernel*, size_t> by_entry_;
  std::vector<Buffer> buffers_;
  std::map<std::tuple<BufferId, size_t, size_t>, xrt::bo> sub_;
  std::vector<Loaded*> in_flight_;
  int last_context_ = -1;
  std::string description_;
};

}  // namespace

bool XrtAvailable(std::string* why_not) {
  struct stat st;
  if (::stat(kAccel, &st) != 0) {
    if (why_not)
      *why_not = std::string(kAccel) + " does not exist: no Ryzen AI NPU, or the amdxdna driver is not loaded "
                 "(mainline Linux >= 6.14, or AMD's xdna-driver)";
    return false;
  }
  if (::access(kAccel, R_OK | W_OK) != 0) {
    if (why_not) *why_not = std::string(kAccel) + " is not readable and writable by this user (add yourself to group 'render')";
    return false;
  }
  try {
    xrt::device d(0u);
  } catch (const std::exception& e) {
    if (why_not) *why_not = std::string("XRT cannot open the NPU: ") + e.what();
    return false;
  }
  return true;
}

Status CreateXrtDevice(const std::string& manifest_path, std::unique_ptr<Device>* out) {
  try {
    auto d = std::make_unique<XrtDevice>();
    PHX_RETURN_IF_ERROR(d->Open(manifest_path));
    *out = std::move(d);
    return Status::OK();
  } catch (const std::exception& e) {
    return XrtError("creating the NPU device", e);
  } catch (...) {
    return Status::Error("XRT: unknown error while creating the NPU device");
  }
}

}  // namespace phoenix
