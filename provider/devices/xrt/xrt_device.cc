// XrtDevice: phoenix::Device on the Phoenix NPU through XRT (xrt::hw_context). See xrt_device.h
// for the design. NOT YET RUN ON HARDWARE: compiled only where a modern XRT is installed
// (cmake/XrtDevice.cmake); written against XRT's public C++ API and mlir-aie's host examples.
#include "devices/xrt/xrt_device.h"

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
#include "devices/xrt/npu_probe.h"
#include "devices/xrt/run_state.h"
#include "devices/xrt/context_cache.h"
#include "devices/xrt/npu_mode.h"
#include "devices/xrt/int8_params.h"
#include "xrt/xrt_bo.h"
#include "xrt/xrt_device.h"
#include "xrt/xrt_kernel.h"
// XRT >= 2.21.75 (kernels/common/aie/toolchain.json): these are its header paths.
#include "xrt/experimental/xrt_xclbin.h"
#include "xrt/xrt_hw_context.h"

namespace phoenix {
namespace {

using xrt_device::Manifest;
using xrt_device::ManifestKernel;

// run_state.h restates ert_cmd_state so its policy is tested without XRT: keep the two equal.
static_assert(xrt_device::kErtCompleted == static_cast<int>(ERT_CMD_STATE_COMPLETED) && xrt_device::kErtError == static_cast<int>(ERT_CMD_STATE_ERROR) &&
                  xrt_device::kErtAbort == static_cast<int>(ERT_CMD_STATE_ABORT) && xrt_device::kErtTimeout == static_cast<int>(ERT_CMD_STATE_TIMEOUT) &&
                  xrt_device::kErtNoResponse == static_cast<int>(ERT_CMD_STATE_NORESPONSE) &&
                  xrt_device::kErtSkCrashed == static_cast<int>(ERT_CMD_STATE_SKCRASHED) && xrt_device::kErtRunning == static_cast<int>(ERT_CMD_STATE_RUNNING),
              "run_state.h's ert_cmd_state values differ from this XRT's");

constexpr const char* kAccel = "/dev/accel/accel0";
constexpr unsigned kOpcode = 3;  // mlir-aie NPU designs: "run the instruction stream in the BO"
constexpr auto kRunTimeout = std::chrono::milliseconds(10000);

const char* kInstallHint =
    "check that the amdxdna driver is loaded (lsmod | grep amdxdna), that /dev/accel/accel0 is readable "
    "and writable by you (group 'render'), that the NPU firmware is in /lib/firmware/amdnpu, and that "
    "XRT from AMD's xdna-driver build is installed (source /opt/xilinx/xrt/setup.sh); `phoenix-npu doctor` "
    "checks all of these";

// Per-stage mode: hw_contexts this session may hold. npu1 has 6 for all processes (npu1_regs.c);
// PHOENIX_NPU_CONTEXTS lowers it to leave room for other processes.
size_t ContextBudget() {
  const char* env = std::getenv("PHOENIX_NPU_CONTEXTS");
  const long n = env ? std::strtol(env, nullptr, 10) : 6;
  return static_cast<size_t>(n < 1 ? 1 : n > 6 ? 6 : n);
}

Status XrtError(const std::string& what, const std::exception& e) {
  return Status::Error("XRT: " + what + " failed: " + e.what() + " (" + kInstallHint + ")");
}

struct Stage {            // one xclbin kernel of a manifest kernel, ready to run
  const ManifestKernel* entry = nullptr;
  const xrt_device::ManifestStage* stage = nullptr;
  xrt::xclbin xclbin;           // per-stage mode: this stage's own xclbin (registered once)
  xrt::hw_context ctx;          // per-stage mode: open while the stage is in the context cache
  std::vector<uint32_t> words;  // the instruction stream, kept to rebuild the BO after an eviction
  bool resident = false;
  xrt::kernel kernel;
  xrt::bo instr;
  uint32_t n_instr = 0;
  xrt::run run;
  bool in_flight = false;
};

struct Loaded {           // one manifest kernel: its stages and, for a MatMul, the FP32 scratch
  std::vector<size_t> stages;   // indices into XrtDevice::stages_
  xrt::bo scratch;              // "acc": written by the GEMM stage, read by the epilogue stage (int32 for INT8)
  // matmul_int8 (int8_params.h): the quantized A, the quantize parameters of the current call, and
  // the column parameters per (weight buffer, activation quantization), computed once each.
  xrt::bo qa, qparams;
  std::map<std::tuple<BufferId, float, int32_t, bool>, xrt::bo> colparams;
  xrt::bo* current_colparams = nullptr;
  // weight_zero_points kernels: B' = [qb; -zb] per weight buffer (int8_params.h ZeroPointWeights), the
  // GEMM stage's "B"
  std::map<BufferId, xrt::bo> zp_weights;
  xrt::bo* current_zp_weights = nullptr;
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
    const ManifestKernel* k = manifest_.Find(call, why_not);
    if (k && k->weight_zero_points && call.in[5].present()) {  // -zb must fit int8 (int8_params.h)
      const Operand& z = call.in[5];
      if (z.buffer >= 0 && static_cast<size_t>(z.buffer) < buffers_.size() && buffers_[z.buffer].host) {
        const char* no = xrt_device::WeightZeroPointRefusal(
            reinterpret_cast<const int8_t*>(buffers_[z.buffer].host) + z.view.offset, z.view.NumElements());
        if (no) {
          if (why_not) *why_not = no;
          return false;
        }
      }
    }
    return k != nullptr;
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
  Status SyncFromDevice(BufferId id, size_t offset, size_t bytes) override {
    if (recording_ && !order_.empty()) {  // the first plan run has ended: its launch order repeats
      cache_.SetOrder(order_);
      recording_ = false;
    }
    return Sync(id, offset, bytes, false);
  }

  Status Launch(const KernelCall& call) override {
    if (!broken_.empty()) return Status::Error(broken_);
    std::string why;
    const ManifestKernel* entry = manifest_.Find(call, &why);
    if (!entry) return Status::Error("NPU: " + why);
    Loaded& k = loaded_[by_entry_.at(entry)];
    if (entry->op == "matmul_int8") PHX_RETURN_IF_ERROR(PrepareInt8(call, *entry, &k));
    // All kernels share one hw_context, whose runs execute in submission order: the plan's
    // dependent calls need no wait in between. A run object still in flight must finish first.
    for (size_t si : k.stages) {
      Stage& st = stages_[si];
      if (st.in_flight) PHX_RETURN_IF_ERROR(Wait());
      if (mode_ == xrt_device::NpuMode::kPerStage) {
        // Runs on different hw_contexts are not ordered: the previous stage must finish first.
        if (!in_flight_.empty()) PHX_RETURN_IF_ERROR(Wait());
        PHX_RETURN_IF_ERROR(MakeResident(si));
        if (recording_) order_.push_back(static_cast<int>(si));
      }
      try {
        st.run.set_arg(0, kOpcode);
        st.run.set_arg(1, st.instr);
        st.run.set_arg(2, st.n_instr);
        for (size_t i = 0; i < st.stage->args.size(); ++i) {
          xrt::bo* bo = nullptr;
          PHX_RETURN_IF_ERROR(ArgBo(call, k, st.stage->args[i], &bo));
          st.run.set_arg(static_cast<int>(3 + i), *bo);
        }
        st.run.start();
      } catch (const std::exception& e) {
        // Earlier stages of this call may be running: the session's results are no longer trustworthy.
        broken_ = XrtError("starting " + entry->Describe() + " (" + st.stage->kernel_name + ")", e).message() +
                  "; this session's NPU path is stopped: create a new session, or use device=emulator";
        return Status::Error(broken_);
      }
      st.in_flight = true;
      in_flight_.push_back(&st);
    }
    return Status::OK();
  }

  Status Wait() override {
    if (!broken_.empty() && in_flight_.empty()) return Status::Error(broken_);
    // Every run is waited for (none is left in flight); any state but COMPLETED, or an exception from
    // wait, stops the session's NPU path (run_state.h: review M4).
    for (Stage* st : in_flight_) {
      const std::string what = st->entry->Describe() + " (" + st->stage->kernel_name + ")";
      int state = 0;
      std::string exception;
      try {
        state = static_cast<int>(st->run.wait(kRunTimeout));
      } catch (const xrt::run::command_error& e) {  // aie_error derives from it: the state travels with it
        exception = e.what();
        state = static_cast<int>(e.get_command_state());
      } catch (const std::exception& e) {
        exception = e.what();
        try {
          state = static_cast<int>(st->run.state());
        } catch (const std::exception&) {
        }
      }
      const std::string failure = xrt_device::RunFailure(what, state, exception);
      if (!failure.empty()) {
        if (exception.empty() ? xrt_device::ErtNeedsAbort(state) : state != xrt_device::kErtCompleted) {
          try {  // XRT leaves a run that did not finish to the caller (xrt_kernel.h, run::wait)
            st->run.abort();
          } catch (const std::exception&) {
          }
        }
        if (broken_.empty()) broken_ = failure;  // the first failure names the cause
      }
      st->in_flight = false;
    }
    in_flight_.clear();  // keeps its capacity: no allocation per run after warm-up
    return broken_.empty() ? Status::OK() : Status::Error(broken_);
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
    // The mode: what `phoenix-npu doctor` reports (npu_mode.h: the built artifacts, PHOENIX_NPU_MODE and
    // the bring-up record next to the manifest).
    const xrt_device::ModeChoice choice = ChooseNpuModeFor(manifest_);
    if (!choice.ok) return Status::Error("NPU: " + choice.why);
    mode_ = choice.mode;
    if (mode_ == xrt_device::NpuMode::kOneXclbin) {
      // ONE xclbin holds every kernel (aiecc --xclbin-input chains them), so ONE hw_context: npu1
      // has 6 per device, shared by all processes (xdna-driver npu1_regs.c, hwctx_limit).
      try {
        xclbin_ = xrt::xclbin(manifest_.xclbin_path);
        device_.register_xclbin(xclbin_);
        ctx_ = xrt::hw_context(device_, xclbin_.get_uuid());
      } catch (const std::exception& e) {
        return XrtError("registering " + manifest_.xclbin_path + " and creating its hardware context", e);
      }
    }
    size_t n_stages = 0;
    for (const ManifestKernel& e : manifest_.kernels) n_stages += e.stages.size();
    stages_.reserve(n_stages);  // Loaded and in_flight_ point into it: no reallocation later
    in_flight_.reserve(n_stages);
    loaded_.reserve(manifest_.kernels.size());
    for (const ManifestKernel& e : manifest_.kernels) {
      Loaded k;
      try {
        for (const xrt_device::ManifestStage& ms : e.stages) {
          Stage st;
          st.entry = &e;
          st.stage = &ms;
          PHX_RETURN_IF_ERROR(ReadInstructions(ms.insts_path, &st.words));
          st.n_instr = static_cast<uint32_t>(st.words.size());
          if (mode_ == xrt_device::NpuMode::kOneXclbin) {
            st.kernel = xrt::kernel(ctx_, ms.kernel_name);
            PHX_RETURN_IF_ERROR(LoadInstructions(&st));
            if (stages_.empty()) data_group_ = st.kernel.group_id(3);
          } else {
            st.xclbin = xrt::xclbin(ms.xclbin_path);  // registered once; its context opens on demand
            device_.register_xclbin(st.xclbin);
          }
          k.stages.push_back(stages_.size());
          stages_.push_back(std::move(st));
        }
        if (mode_ == xrt_device::NpuMode::kPerStage && stages_.size() == k.stages.size() && !k.stages.empty()) {
          // The data BOs' memory group comes from a kernel: open the first stage's context now.
          PHX_RETURN_IF_ERROR(MakeResident(k.stages.front()));
          data_group_ = stages_[k.stages.front()].kernel.group_id(3);
        }
        if (e.ScratchBytes() > 0)
          k.scratch = xrt::bo(device_, static_cast<size_t>(e.ScratchBytes()), xrt::bo::flags::host_only, data_group_);
        if (e.QuantizedABytes() > 0) {
          k.qa = xrt::bo(device_, static_cast<size_t>(e.QuantizedABytes()), xrt::bo::flags::host_only, data_group_);
          k.qparams = xrt::bo(device_, xrt_device::kQuantizeParams * sizeof(float), xrt::bo::flags::host_only,
                              data_group_);
        }
      } catch (const std::exception& ex) {
        return XrtError("loading " + e.Describe() + " from " + manifest_.xclbin_path +
                            " (is its kernel_name in the xclbin? see the manifest)", ex);
      }
      by_entry_[&e] = loaded_.size();
      loaded_.push_back(std::move(k));
    }
    std::string name = "Phoenix NPU";
    try {
      name = device_.get_info<xrt::info::device::name>();
    } catch (const std::exception&) {
    }
    description_ = name + " " + kAccel + " via XRT, " + std::to_string(loaded_.size()) + " kernels (" +
                   std::to_string(stages_.size()) + " xclbin kernels), mode " + xrt_device::NpuModeName(mode_) +
                   (mode_ == xrt_device::NpuMode::kOneXclbin
                        ? std::string(": one hardware context")
                        : ": one hardware context per stage, at most " + std::to_string(cache_.capacity()) + " open") +
                   " (" + choice.why + "; " + path + ")";
    return Status::OK();
  }

 private:
  // The stage's kernel, instruction BO (group_id 1) and run, on its current context.
  Status LoadInstructions(Stage* st) {
    const size_t bytes = st->words.size() * sizeof(uint32_t);
    st->instr = xrt::bo(device_, bytes, xrt::bo::flags::cacheable, st->kernel.group_id(1));
    std::memcpy(st->instr.map<void*>(), st->words.data(), bytes);
    st->instr.sync(XCL_BO_SYNC_BO_TO_DEVICE);
    st->run = xrt::run(st->kernel);
    return Status::OK();
  }

  // Per-stage mode: give stage `si` an open hw_context, closing the one context_cache.h chooses.
  // Data BOs belong to the device, not the context: they stay (mlir-air PR #2012 does the same).
  Status MakeResident(size_t si) {
    Stage& st = stages_[si];
    const auto step = cache_.Use(static_cast<int>(si));
    if (step.hit && st.resident) return Status::OK();
    if (step.evicted >= 0) Close(static_cast<size_t>(step.evicted));
    for (int attempt = 0;; ++attempt) {
      try {
        st.ctx = xrt::hw_context(device_, st.xclbin.get_uuid());
        st.kernel = xrt::kernel(st.ctx, st.stage->kernel_name);
        PHX_RETURN_IF_ERROR(LoadInstructions(&st));
        st.resident = true;
        return Status::OK();
      } catch (const std::exception& e) {
        // Other processes may hold npu1's contexts (6 for the device): hold one fewer and retry.
        const int victim = cache_.Shrink();
        if (victim < 0 || attempt >= 5)
          return XrtError("creating the hardware context of " + st.stage->kernel_name + " (per-stage mode, " +
                              std::to_string(cache_.capacity()) + " contexts)", e);
        Close(static_cast<size_t>(victim));
      }
    }
  }

  void Close(size_t si) {
    Stage& st = stages_[si];
    st.run = xrt::run();
    st.instr = xrt::bo();
    st.kernel = xrt::kernel();
    st.ctx = xrt::hw_context();
    st.resident = false;
  }

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

  // The operand a manifest argument name refers to, and its element size: the kernel-kind
  // table (common/kernel_kinds.h) names every slot of every kind.
  static const Operand* OperandFor(const KernelCall& c, const std::string& name, size_t* elem) {
    const KernelKindDesc& d = DescribeKernel(c.kind());
    for (int i = 0; i < kMaxInputs; ++i)
      if (d.in[i].name != nullptr && name == d.in[i].name) {
        *elem = SlotElementSize(c.kind(), i, c.precision);
        return &c.in[i];
      }
    if (d.out.name != nullptr && name == d.out.name) {
      *elem = SlotElementSize(c.kind(), kOutputSlot, c.precision);
      return &c.out;
    }
    return nullptr;
  }

  // matmul_int8: the quantize stage's parameters for this call, and the epilogue's column parameters
  // (computed once per weight buffer and activation quantization from the resident weights: int8_params.h).
  Status PrepareInt8(const KernelCall& call, const ManifestKernel& e, Loaded* k) {
    const MatMulInt8Params& p = call.Params<MatMulInt8Params>();
    try {
      float qp[xrt_device::kQuantizeParams];
      xrt_device::QuantizeParams(p.a, qp);
      std::memcpy(k->qparams.map<void*>(), qp, sizeof(qp));
      k->qparams.sync(XCL_BO_SYNC_BO_TO_DEVICE);
      const BufferId b = call.in[1].buffer;
      const auto key = std::make_tuple(b, p.a.scale, p.a.zero_point, p.a.is_signed);
      auto it = k->colparams.find(key);
      if (it == k->colparams.end()) {  // first run only (weights are resident and constant)
        for (int slot : {1, 4}) PHX_RETURN_IF_ERROR(Sync(call.in[slot].buffer, 0, buffers_[call.in[slot].buffer].bytes, false));
        auto host = [&](int slot, size_t elem) {
          return Map(call.in[slot].buffer) + static_cast<size_t>(call.in[slot].view.offset) * elem;
        };
        const float* bias = nullptr;
        if (call.in[2].present()) {
          PHX_RETURN_IF_ERROR(Sync(call.in[2].buffer, 0, buffers_[call.in[2].buffer].bytes, false));
          bias = reinterpret_cast<const float*>(host(2, 4));
        }
        const int8_t* zb = nullptr;
        int64_t zb_channels = 1;
        if (e.weight_zero_points) {
          PHX_RETURN_IF_ERROR(Sync(call.in[5].buffer, 0, buffers_[call.in[5].buffer].bytes, false));
          zb = reinterpret_cast<const int8_t*>(host(5, 1));
          zb_channels = call.in[5].view.NumElements();
          if (const char* no = xrt_device::WeightZeroPointRefusal(zb, zb_channels)) return Status::Error(std::string("NPU: ") + no);
        }
        const std::vector<uint32_t> words = xrt_device::ColumnParams(
            reinterpret_cast<const int8_t*>(host(1, 1)), e.K, e.N, reinterpret_cast<const float*>(host(4, 4)),
            call.in[4].view.NumElements(), bias, p.a, zb, zb_channels);
        if (e.weight_zero_points && !k->zp_weights.count(b)) {  // B' = [qb; -zb], once per weight buffer
          const std::vector<int8_t> bz = xrt_device::ZeroPointWeights(reinterpret_cast<const int8_t*>(host(1, 1)), e.K,
                                                                      e.N, zb, zb_channels);
          xrt::bo zbo(device_, bz.size(), xrt::bo::flags::host_only, data_group_);
          std::memcpy(zbo.map<void*>(), bz.data(), bz.size());
          zbo.sync(XCL_BO_SYNC_BO_TO_DEVICE);
          k->zp_weights.emplace(b, std::move(zbo));
        }
        xrt::bo bo(device_, words.size() * 4, xrt::bo::flags::host_only, data_group_);
        std::memcpy(bo.map<void*>(), words.data(), words.size() * 4);
        bo.sync(XCL_BO_SYNC_BO_TO_DEVICE);
        it = k->colparams.emplace(key, std::move(bo)).first;
      }
      k->current_colparams = &it->second;
      k->current_zp_weights = e.weight_zero_points ? &k->zp_weights.at(b) : nullptr;
    } catch (const std::exception& ex) {
      return XrtError("preparing the INT8 parameters of " + e.Describe(), ex);
    }
    return Status::OK();
  }

  // A sub-buffer for the operand's byte range, created once and cached; "acc" is the kernel's
  // own FP32 (int32 for matmul_int8) scratch, "qa" / "qparams" / "colparams" the INT8 stages' buffers.
  Status ArgBo(const KernelCall& call, Loaded& k, const std::string& name, xrt::bo** out) {
    if (name == "acc" || name == "qa" || name == "qparams") {
      *out = name == "acc" ? &k.scratch : name == "qa" ? &k.qa : &k.qparams;
      return Status::OK();
    }
    if (name == "colparams") {
      if (!k.current_colparams) return Status::Error("NPU: the INT8 column parameters were not prepared");
      *out = k.current_colparams;
      return Status::OK();
    }
    if (name == "B" && k.current_zp_weights) {  // a weight_zero_points kernel's GEMM reads B' = [qb; -zb]
      *out = k.current_zp_weights;
      return Status::OK();
    }
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
  xrt::xclbin xclbin_;
  xrt::hw_context ctx_;
  xrt::memory_group data_group_ = 0;
  std::vector<Stage> stages_;
  std::vector<Loaded> loaded_;
  std::unordered_map<const ManifestKernel*, size_t> by_entry_;
  std::vector<Buffer> buffers_;
  std::map<std::tuple<BufferId, size_t, size_t>, xrt::bo> sub_;
  std::vector<Stage*> in_flight_;
  xrt_device::NpuMode mode_ = xrt_device::NpuMode::kPerStage;
  xrt_device::ContextCache cache_{ContextBudget()};
  std::vector<int> order_;  // per-stage: the first plan run's launch order (Belady eviction after it)
  bool recording_ = true;
  std::string broken_;      // set by any run that did not complete: the session's NPU path is stopped
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
