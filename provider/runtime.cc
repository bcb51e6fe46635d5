#include "runtime.h"

#include <chrono>
#include <algorithm>
#include <cstring>

#include "common/bf16.h"
#include "common/kernel_kinds.h"

namespace phoenix {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Kernel elements (BF16 or BF16x3) -> FP32 through a strided view, into contiguous dst.
template <typename T>
void GatherToF32(const T* base, const TensorView& v, float* dst) {
  const int64_t n = v.NumElements();
  if (v.IsContiguous()) {
    const T* src = base + v.offset;
    for (int64_t i = 0; i < n; ++i) dst[i] = ToF32(src[i]);
    return;
  }
  int64_t idx[kMaxRank] = {};
  int64_t off = v.offset;
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = ToF32(base[off]);
    for (int d = v.rank - 1; d >= 0; --d) {
      off += v.strides[d];
      if (++idx[d] < v.shape[d]) break;
      off -= v.strides[d] * v.shape[d];
      idx[d] = 0;
    }
  }
}

template <typename T>
void RoundFromF32(const float* src, int64_t n, T* dst) {
  for (int64_t k = 0; k < n; ++k) dst[k] = FromF32<T>(src[k]);
}

}  // namespace

Status PlanRunner::Create(Plan plan, std::shared_ptr<Device> device, std::unique_ptr<PlanRunner>* out) {
  std::unique_ptr<PlanRunner> r(new PlanRunner());
  r->plan_ = std::move(plan);
  r->device_ = std::move(device);
  PHX_RETURN_IF_ERROR(r->Resolve());
  *out = std::move(r);
  return Status::OK();
}

PlanRunner::~PlanRunner() {
  if (device_ && arena_ != kNoBuffer) device_->Free(arena_);
}

Status PlanRunner::Resolve() {
  const size_t n = plan_.tensors.size();
  tensor_buffer_.assign(n, kNoBuffer);
  tensor_elem_offset_.assign(n, 0);
  PHX_RETURN_IF_ERROR(device_->Allocate(static_cast<size_t>(std::max<int64_t>(plan_.arena_bytes, 1)), &arena_));
  for (size_t t = 0; t < n; ++t) {
    const PlanTensor& pt = plan_.tensors[t];
    if (pt.is_weight) {
      tensor_buffer_[t] = pt.weight.buffer;
    } else if (pt.arena_offset >= 0) {
      tensor_buffer_[t] = arena_;
      tensor_elem_offset_[t] = pt.arena_offset / static_cast<int64_t>(pt.ElementSize(plan_.precision));
    }
  }
  // Resolve every operand to (buffer, view with the buffer-relative offset) once.
  auto resolve = [&](const PlanOperand& po, Operand* o) -> Status {
    if (!po.present()) return Status::OK();
    if (tensor_buffer_[po.tensor] == kNoBuffer) return Status::Error("internal: tensor without a buffer in " + plan_.name);
    o->buffer = tensor_buffer_[po.tensor];
    o->view = po.view;
    o->view.offset += tensor_elem_offset_[po.tensor];
    return Status::OK();
  };
  calls_.clear();
  call_start_ns_.assign(plan_.calls.size(), 0);
  call_end_ns_.assign(plan_.calls.size(), 0);
  for (const PlanCall& pc : plan_.calls) {
    KernelCall c = pc.call;
    for (int i = 0; i < 4; ++i) PHX_RETURN_IF_ERROR(resolve(pc.in[i], &c.in[i]));
    PHX_RETURN_IF_ERROR(resolve(pc.out, &c.out));
    if (c.out.view.NumElements() == 0) continue;  // an empty output: nothing to compute (symbolic dim fed 0)
    std::string why;
    if (!device_->CanRun(c, &why))
      return Status::Error("the " + device_->Kind() + " device cannot run " + std::string(KernelKindName(c.kind())) +
                           " for " + c.label + ": " + why);
    host_calls_ += device_->OnHost(c) ? 1 : 0;
    calls_.push_back(std::move(c));
  }
  if (host_calls_ > 0) {
    int per_kind[static_cast<int>(KernelKind::kCount)] = {};
    for (const KernelCall& c : calls_) per_kind[static_cast<int>(c.kind())] += device_->OnHost(c) ? 1 : 0;
    host_note_ = std::to_string(host_calls_) + " of " + std::to_string(calls_.size()) + " kernel calls (";
    bool first = true;
    for (int k = 0; k < static_cast<int>(KernelKind::kCount); ++k)
      if (per_kind[k]) {
        host_note_ += (first ? "" : ", ") + std::string(KernelKindName(static_cast<KernelKind>(k))) + " x" +
                      std::to_string(per_kind[k]);
        first = false;
      }
    host_note_ += ") have no " + device_->Kind() + " kernel and run on the host CPU";
  }
  return Status::OK();
}

Status PlanRunner::Run(const float* const* inputs, float* const* outputs, RegionCounters* counters,
                       std::mutex* counters_mutex) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  const int64_t t_start = NowNs();
  uint8_t* arena = device_->Map(arena_);
  const bool split = plan_.precision == Precision::kBF16x3;
  const size_t elem = ActivationElementSize(plan_.precision);
  int64_t bytes_in = 0, bytes_out = 0;
  for (size_t i = 0; i < plan_.inputs.size(); ++i) {
    const PlanIO& io = plan_.inputs[i];
    const int64_t n = io.view.NumElements();
    const int64_t first = tensor_elem_offset_[io.tensor] + io.view.offset;
    uint8_t* dst = arena + first * elem;
    if (split) RoundFromF32(inputs[i], n, reinterpret_cast<split_t*>(dst));
    else RoundFromF32(inputs[i], n, reinterpret_cast<bf16_t*>(dst));
    PHX_RETURN_IF_ERROR(device_->SyncToDevice(arena_, static_cast<size_t>(first) * elem, static_cast<size_t>(n) * elem));
    bytes_in += n * static_cast<int64_t>(elem);
  }
  int64_t kernel_ns = 0;
  int64_t launches_by_kind[static_cast<int>(KernelKind::kCount)] = {};
  int64_t ns_by_kind[static_cast<int>(KernelKind::kCount)] = {};
  for (size_t ci = 0; ci < calls_.size(); ++ci) {
    const KernelCall& c = calls_[ci];
    const int64_t t0 = NowNs();
    Status s = device_->Launch(c);
    const int64_t t1 = NowNs();
    call_start_ns_[ci] = t0;
    call_end_ns_[ci] = t1;
    if (!s.ok()) return Status::Error(s.message() + " (kernel " + KernelKindName(c.kind()) + " for " + c.label + ")");
    const int k = static_cast<int>(c.kind());
    launches_by_kind[k]++;
    ns_by_kind[k] += t1 - t0;
    kernel_ns += t1 - t0;
  }
  const int64_t t_wait = NowNs();
  PHX_RETURN_IF_ERROR(device_->Wait());
  kernel_ns += NowNs() - t_wait;
  for (size_t i = 0; i < plan_.outputs.size(); ++i) {
    const PlanIO& io = plan_.outputs[i];
    TensorView v = io.view;
    v.offset += tensor_elem_offset_[io.tensor];
    const int64_t extent = v.Extent();
    const int64_t lowest = v.offset;  // views here never have negative strides
    if (extent > lowest)
      PHX_RETURN_IF_ERROR(device_->SyncFromDevice(tensor_buffer_[io.tensor], static_cast<size_t>(lowest) * elem,
                                                  static_cast<size_t>(extent - lowest) * elem));
    const uint8_t* base = device_->Map(tensor_buffer_[io.tensor]);
    if (split) GatherToF32(reinterpret_cast<const split_t*>(base), v, outputs[i]);
    else GatherToF32(reinterpret_cast<const bf16_t*>(base), v, outputs[i]);
    bytes_out += v.NumElements() * static_cast<int64_t>(elem);
  }
  run_start_ns_ = t_start;
  run_end_ns_ = NowNs();
  std::lock_guard<std::mutex> cl(*counters_mutex);
  RegionCounters& c = *counters;
  c.runs++;
  c.launches += static_cast<int64_t>(calls_.size());
  for (int k = 0; k < static_cast<int>(KernelKind::kCount); ++k) {
    c.launches_by_kind[k] += launches_by_kind[k];
    c.ns_by_kind[k] += ns_by_kind[k];
  }
  c.host_launches += host_calls_;
  c.bytes_in += bytes_in;
  c.bytes_out += bytes_out;
  c.transfers_in += static_cast<int64_t>(plan_.inputs.size());
  c.transfers_out += static_cast<int64_t>(plan_.outputs.size());
  c.last_run_ns = run_end_ns_ - t_start;
  c.last_host_overhead_ns = c.last_run_ns - kernel_ns;
  return Status::OK();
}

void PlanRunner::TraceEvents(std::string* events, int pid) const {
  std::lock_guard<std::mutex> lock(run_mutex_);
  if (run_end_ns_ == 0) return;
  auto us = [&](int64_t ns) { return std::to_string((ns - run_start_ns_) / 1000.0); };
  auto add = [&](const std::string& name, const std::string& cat, int tid, int64_t b, int64_t e) {
    *events += ",{\"name\":\"" + EscapeJson(name) + "\",\"cat\":\"" + cat + "\",\"ph\":\"X\",\"pid\":" +
               std::to_string(pid) + ",\"tid\":" + std::to_string(tid) + ",\"ts\":" + us(b) +
               ",\"dur\":" + std::to_string((e - b) / 1000.0) + "}";
  };
  add("run " + plan_.name, "run", 0, run_start_ns_, run_end_ns_);
  for (size_t i = 0; i < calls_.size(); ++i)
    add(std::string(KernelKindName(calls_[i].kind())) + ": " + calls_[i].label, KernelKindName(calls_[i].kind()), 1,
        call_start_ns_[i], call_end_ns_[i]);
}

}  // namespace phoenix
