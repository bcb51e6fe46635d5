#include "region.h"

#include <stdexcept>

#include "common/kernel_kinds.h"
#include "ops/op.h"

namespace phoenix {

CompiledRegion::CompiledRegion(RegionGraph region, const ProviderOptions& options, std::shared_ptr<Device> device,
                               const OrtLogger* logger)
    : region_(std::move(region)),
      max_plans_(options.max_plans),
      fail_on_run_(options.hooks.fail_on == "run"),
      device_(device),
      logger_(logger),
      weights_(device, options.precision) {
  compile_options_.fuse_attention = options.fuse_attention;
  compile_options_.precision = options.precision;
}

Status CompiledRegion::Create(RegionGraph region, const ProviderOptions& options, std::shared_ptr<Device> device,
                              const OrtLogger* logger, std::unique_ptr<CompiledRegion>* out,
                              const RegionRestore* restore) {
  std::unique_ptr<CompiledRegion> r(new CompiledRegion(std::move(region), options, std::move(device), logger));
  if (restore)
    PHX_RETURN_IF_ERROR(restore->weights(r->weights_));
  else
    PHX_RETURN_IF_ERROR(r->weights_.UploadMatrices(r->region_.graph));
  for (GValue& v : r->region_.graph.values) v.info = Ort::ConstValueInfo{nullptr};  // ORT's graph is gone after Compile
  {
    std::lock_guard<std::mutex> lk(r->counters_mutex_);
    r->counters_.weight_bytes_uploaded = r->weights_.bytes_uploaded();
    r->counters_.device_allocations = r->weights_.allocations();
  }
  r->all_static_ = true;
  std::vector<Shape> shapes;
  for (int v : r->region_.inputs) {
    r->all_static_ &= r->region_.graph.value(v).IsStatic();
    shapes.push_back(r->region_.graph.value(v).shape);
  }
  if (r->all_static_) {
    std::shared_ptr<PlanRunner> runner;
    std::lock_guard<std::mutex> lk(r->cache_mutex_);
    PHX_RETURN_IF_ERROR(r->Build(shapes, &runner, restore ? &restore->plan : nullptr));
  } else if (restore && restore->plan) {
    return Status::InvalidArgument("the context blob holds a plan, but region " + r->region_.name +
                                   " has symbolic input dims: the blob is inconsistent; re-export the compiled model");
  } else {
    Log(logger, ORT_LOGGING_LEVEL_INFO,
        "PhoenixNPU: " + r->region_.name + ": " + std::to_string(r->region_.graph.nodes.size()) +
            " nodes with symbolic dims; a plan is built for each new set of input shapes (at most " +
            std::to_string(r->max_plans_) + " kept)");
  }
  r->registry_id_ = CountersRegistry::Get().Add(r.get());
  *out = std::move(r);
  return Status::OK();
}

CompiledRegion::~CompiledRegion() {
  if (registry_id_ >= 0) {
    // Copy, then deregister without holding counters_mutex_: the registry calls Snapshot()
    // (which takes counters_mutex_) with its own lock held, so holding both here in the other
    // order deadlocked a counters read against a session's teardown.
    RegionCounters final_counts;
    {
      std::lock_guard<std::mutex> lk(counters_mutex_);
      final_counts = counters_;
    }
    CountersRegistry::Get().Remove(registry_id_, final_counts);
  }
  last_run_.reset();
  cache_.clear();  // arenas go before the weights they were planned with
}

// Called with cache_mutex_ held.
Status CompiledRegion::Build(const std::vector<Shape>& shapes, std::shared_ptr<PlanRunner>* runner,
                             const std::function<Status(Plan*)>* stored) {
  const int64_t bytes_before = weights_.bytes_uploaded(), buffers_before = weights_.allocations();
  Plan plan;
  const bool loaded = stored && *stored;
  if (loaded) {  // from an EPContext blob: checked as a plan, and against this region's inputs
    PHX_RETURN_IF_ERROR((*stored)(&plan));
    bool same = plan.inputs.size() == shapes.size() && plan.outputs.size() == region_.outputs.size();
    for (size_t i = 0; same && i < shapes.size(); ++i) same = plan.inputs[i].shape == shapes[i];
    if (!same)
      return Status::InvalidArgument("the context blob's plan does not match the inputs and outputs of region " +
                                     region_.name + ": re-export the compiled model");
    PHX_RETURN_IF_ERROR(ValidatePlan(plan));
  } else {
    PHX_RETURN_IF_ERROR(BuildPlan(region_, shapes, compile_options_, weights_, &plan));
  }
  std::string shape_text;
  for (const Shape& s : shapes) shape_text += (shape_text.empty() ? "" : ", ") + ShapeToString(s);
  const std::string summary = plan.Summary();
  std::unique_ptr<PlanRunner> r;
  PHX_RETURN_IF_ERROR(PlanRunner::Create(std::move(plan), device_, &r));
  if (!r->host_note().empty()) Log(logger_, ORT_LOGGING_LEVEL_WARNING, "PhoenixNPU: " + region_.name + ": " + r->host_note());
  Log(logger_, ORT_LOGGING_LEVEL_INFO,
      "PhoenixNPU: " + summary + (all_static_ ? std::string() : " (plan for input shapes " + shape_text + ")"));
  while (static_cast<int>(cache_.size()) >= max_plans_) {  // evict the least recently used
    size_t oldest = 0;
    for (size_t i = 1; i < cache_.size(); ++i)
      if (cache_[i].last_used < cache_[oldest].last_used) oldest = i;
    cache_.erase(cache_.begin() + static_cast<long>(oldest));
    std::lock_guard<std::mutex> lk(counters_mutex_);
    counters_.plan_evictions++;
  }
  *runner = std::shared_ptr<PlanRunner>(std::move(r));
  cache_.push_back(CachedPlan{shapes, *runner, ++tick_});
  std::lock_guard<std::mutex> lk(counters_mutex_);
  (loaded ? counters_.plans_loaded : counters_.plans_built)++;
  counters_.device_allocations += 1 + (weights_.allocations() - buffers_before);  // the arena, new parameters
  counters_.weight_bytes_uploaded += weights_.bytes_uploaded() - bytes_before;
  return Status::OK();
}

Status CompiledRegion::PlanFor(const int64_t* dims, const size_t* ranks, std::shared_ptr<PlanRunner>* runner) {
  const size_t n = region_.inputs.size();
  std::lock_guard<std::mutex> lk(cache_mutex_);
  for (CachedPlan& c : cache_) {
    bool same = true;
    for (size_t i = 0; same && i < n; ++i) {
      same = c.shapes[i].size() == ranks[i];
      for (size_t d = 0; same && d < ranks[i]; ++d) same = c.shapes[i][d] == dims[i * kMaxRank + d];
    }
    if (!same) continue;
    c.last_used = ++tick_;
    *runner = c.runner;
    if (!all_static_) {
      std::lock_guard<std::mutex> cl(counters_mutex_);
      counters_.plan_cache_hits++;
    }
    return Status::OK();
  }
  std::vector<Shape> shapes(n);
  for (size_t i = 0; i < n; ++i) shapes[i].assign(dims + i * kMaxRank, dims + i * kMaxRank + ranks[i]);
  if (all_static_) {  // ORT checks feeds against static shapes; this is the provider's own check
    std::string got, want;
    for (size_t i = 0; i < n; ++i) {
      got += (i ? ", " : "") + ShapeToString(shapes[i]);
      want += (i ? ", " : "") + ShapeToString(cache_.front().shapes[i]);
    }
    return Status::Error("inputs of shapes " + got + " do not match the shapes the region was compiled for: " + want);
  }
  for (const Shape& s : shapes)
    for (int64_t d : s)
      if (d < 0) return Status::Error("an input has a negative dim");
  return Build(shapes, runner);
}

Status CompiledRegion::Compute(OrtKernelContext* context) {
  if (fail_on_run_) throw std::runtime_error("injected failure (fail_on=run)");
  Ort::KernelContext ctx(context);
  const size_t n_in = region_.inputs.size(), n_out = region_.outputs.size();
  if (ctx.GetInputCount() != n_in || ctx.GetOutputCount() != n_out)
    return Status::Error("region " + region_.name + " expected " + std::to_string(n_in) + " inputs and " +
                         std::to_string(n_out) + " outputs");
  // Reused between runs (per thread) so the run path allocates nothing after its first run.
  thread_local std::vector<int64_t> dims;
  thread_local std::vector<size_t> ranks;
  thread_local std::vector<const float*> inputs;
  thread_local std::vector<float*> outputs;
  dims.resize(n_in * kMaxRank);
  ranks.resize(n_in);
  inputs.resize(n_in);
  outputs.resize(n_out);
  for (size_t i = 0; i < n_in; ++i) {
    Ort::ConstValue v = ctx.GetInput(i);
    auto info = v.GetTensorTypeAndShapeInfo();
    const std::string& name = region_.graph.value(region_.inputs[i]).name;
    if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
      return Status::Error("input '" + name + "' is not float32");
    ranks[i] = info.GetDimensionsCount();
    if (ranks[i] > static_cast<size_t>(kMaxRank)) return Status::Error("input '" + name + "' has rank above 8");
    Ort::ThrowOnError(g_ort->GetDimensions(info, dims.data() + i * kMaxRank, ranks[i]));
    inputs[i] = v.GetTensorData<float>();
  }
  std::shared_ptr<PlanRunner> runner;
  PHX_RETURN_IF_ERROR(PlanFor(dims.data(), ranks.data(), &runner));
  const Plan& plan = runner->plan();
  for (size_t i = 0; i < n_out; ++i) {
    Ort::UnownedValue v = ctx.GetOutput(i, plan.outputs[i].shape.data(), plan.outputs[i].shape.size());
    outputs[i] = v.GetTensorMutableData<float>();
  }
  PHX_RETURN_IF_ERROR(runner->Run(inputs.data(), outputs.data(), &counters_, &counters_mutex_));
  std::lock_guard<std::mutex> lk(counters_mutex_);
  if (last_run_ != runner) last_run_ = runner;
  return Status::OK();
}

RegionSnapshot CompiledRegion::Snapshot() const {
  RegionSnapshot s;
  s.name = region_.name;
  s.device = device_->Kind();
  s.num_onnx_nodes = static_cast<int>(region_.graph.nodes.size());
  s.weight_bytes = weights_.bytes_uploaded();
  {
    std::lock_guard<std::mutex> lk(cache_mutex_);
    s.plans = static_cast<int>(cache_.size());
    for (const CachedPlan& c : cache_) s.arena_bytes += c.runner->plan().arena_bytes;
    const CachedPlan* newest = nullptr;
    for (const CachedPlan& c : cache_)
      if (!newest || c.last_used > newest->last_used) newest = &c;
    if (newest) {
      s.summary = newest->runner->plan().Summary();
      s.num_calls = static_cast<int>(newest->runner->plan().calls.size());
    } else {
      s.summary = region_.name + ": no plan built yet (symbolic dims; one is built per new set of input shapes)";
    }
  }
  std::lock_guard<std::mutex> lk(counters_mutex_);
  s.counters = counters_;
  return s;
}

void CompiledRegion::TraceEvents(std::string* events, int pid) const {
  std::shared_ptr<PlanRunner> last;
  {
    std::lock_guard<std::mutex> lk(counters_mutex_);
    last = last_run_;
  }
  if (last) last->TraceEvents(events, pid);
}

void CompiledRegion::ResetCounters() {
  std::lock_guard<std::mutex> lk(counters_mutex_);
  counters_ = RegionCounters{};
}

}  // namespace phoenix
