#include "counters.h"

#include "common/kernel_kinds.h"

#include <cstring>
#include <sstream>

namespace phoenix {
namespace {

void AddInto(RegionCounters& dst, const RegionCounters& src) {
  dst.runs += src.runs;
  dst.launches += src.launches;
  for (int k = 0; k < static_cast<int>(KernelKind::kCount); ++k) {
    dst.launches_by_kind[k] += src.launches_by_kind[k];
    dst.ns_by_kind[k] += src.ns_by_kind[k];
  }
  dst.bytes_in += src.bytes_in;
  dst.bytes_out += src.bytes_out;
  dst.weight_bytes_uploaded += src.weight_bytes_uploaded;
  dst.device_allocations += src.device_allocations;
  dst.transfers_in += src.transfers_in;
  dst.transfers_out += src.transfers_out;
  dst.host_launches += src.host_launches;
  dst.plans_built += src.plans_built;
  dst.plans_loaded += src.plans_loaded;
  dst.plan_cache_hits += src.plan_cache_hits;
  dst.plan_evictions += src.plan_evictions;
}

std::string Escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') { o += '\\'; o += c; }
    else if (static_cast<unsigned char>(c) < 0x20) o += ' ';
    else o += c;
  }
  return o;
}

void Write(std::ostringstream& os, const RegionCounters& c) {
  os << "\"runs\":" << c.runs << ",\"launches\":" << c.launches << ",\"bytes_in\":" << c.bytes_in
     << ",\"bytes_out\":" << c.bytes_out << ",\"transfers_in\":" << c.transfers_in
     << ",\"transfers_out\":" << c.transfers_out << ",\"host_launches\":" << c.host_launches
     << ",\"weight_bytes_uploaded\":" << c.weight_bytes_uploaded
     << ",\"device_allocations\":" << c.device_allocations << ",\"plans_built\":" << c.plans_built
     << ",\"plans_loaded\":" << c.plans_loaded
     << ",\"plan_cache_hits\":" << c.plan_cache_hits << ",\"plan_evictions\":" << c.plan_evictions
     << ",\"last_run_ns\":" << c.last_run_ns
     << ",\"last_host_overhead_ns\":" << c.last_host_overhead_ns << ",\"kernels\":{";
  bool first = true;
  for (int k = 0; k < static_cast<int>(KernelKind::kCount); ++k) {
    if (!c.launches_by_kind[k]) continue;
    os << (first ? "" : ",") << "\"" << KernelKindName(static_cast<KernelKind>(k)) << "\":{\"launches\":"
       << c.launches_by_kind[k] << ",\"ns\":" << c.ns_by_kind[k] << "}";
    first = false;
  }
  os << "}";
}

}  // namespace

CountersRegistry& CountersRegistry::Get() {
  static CountersRegistry* r = new CountersRegistry();  // outlives every session
  return *r;
}

int CountersRegistry::Add(RegisteredRegion* region) {
  std::lock_guard<std::mutex> lk(mu_);
  live_.push_back({next_id_, region});
  ++regions_created_;
  return next_id_++;
}

void CountersRegistry::Remove(int id, const RegionCounters& final_counts) {
  std::lock_guard<std::mutex> lk(mu_);
  for (size_t i = 0; i < live_.size(); ++i) {
    if (live_[i].first == id) {
      AddInto(retired_, final_counts);
      live_.erase(live_.begin() + static_cast<long>(i));
      return;
    }
  }
}

void CountersRegistry::Reset() {
  std::lock_guard<std::mutex> lk(mu_);
  retired_ = RegionCounters{};
  for (auto& [id, r] : live_) r->ResetCounters();
}

std::string CountersRegistry::ChromeTrace() {
  std::lock_guard<std::mutex> lk(mu_);
  std::string events;
  for (auto& [id, r] : live_) {
    const RegionSnapshot snap = r->Snapshot();
    events += std::string(events.empty() ? "" : ",") + "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" +
              std::to_string(id) + ",\"args\":{\"name\":\"" + Escape(snap.name + " (" + snap.device + ")") + "\"}}";
    r->TraceEvents(&events, id);
  }
  return "{\"traceEvents\":[" + events + "],\"displayTimeUnit\":\"ms\"}";
}

std::string EscapeJson(const std::string& s) { return Escape(s); }

std::string CountersRegistry::Json() {
  std::lock_guard<std::mutex> lk(mu_);
  std::ostringstream os;
  RegionCounters total = retired_;
  os << "{\"regions\":[";
  bool first = true;
  for (auto& [id, r] : live_) {
    const RegionSnapshot e = r->Snapshot();
    AddInto(total, e.counters);
    os << (first ? "" : ",") << "{\"id\":" << id << ",\"name\":\"" << Escape(e.name) << "\",\"device\":\""
       << Escape(e.device) << "\",\"summary\":\"" << Escape(e.summary) << "\",\"onnx_nodes\":" << e.num_onnx_nodes
       << ",\"kernel_calls\":" << e.num_calls << ",\"plans\":" << e.plans << ",\"arena_bytes\":" << e.arena_bytes
       << ",\"weight_bytes\":" << e.weight_bytes << ",";
    Write(os, e.counters);
    os << "}";
    first = false;
  }
  os << "],\"live_regions\":" << live_.size() << ",\"regions_created\":" << regions_created_ << ",\"totals\":{";
  Write(os, total);
  os << "}}";
  return os.str();
}

}  // namespace phoenix
