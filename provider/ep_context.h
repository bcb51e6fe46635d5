// EPContext: a compiled region written into an ONNX model (ORT's session options
// ep.context_enable=1, ep.context_file_path, ep.context_embed_mode) and rebuilt from it without
// capability analysis, lowering or planning.
//
// The blob (docs/usage.md, "Compiled models"), little endian:
//   header   magic "PHXNPUCX", u32 format version, u32 header bytes, u64 payload bytes,
//            u64 FNV-1a 64 checksum of the payload, u64 reserved (0)
//   payload  the EP name that wrote it; precision and fuse_attention; (format 2) the device the plan
//            was made on ("npu" | "emulator") and, on the NPU, the NPU artifacts' identity (the
//            compatibility string's npu=: compat_info.h; "none" elsewhere); the region graph (nodes,
//            attributes, values with shapes and symbols, small constants, GELU matches, the
//            fused node's input / output order); every device weight buffer of the region
//            (converted and packed: BF16 / BF16x3 matrices, FP32 vectors, INT8 data, scales and
//            zero points, with the name or role that finds them again); and, when every input
//            shape is static, the plan: tensors, arena offsets, kernel calls with their
//            parameters and operand views.
// A region with symbolic dims stores no plan: after loading it builds one per new set of input
// shapes, from the stored graph and weights, as a freshly compiled region does.
// A stored plan is used only where it was made (StalePlanReason): on the NPU device, only a format-2
// plan made on the NPU against the installed NPU artifacts; on the emulated device, not one made on
// the NPU. Otherwise the loader logs why and plans again from the stored graph and weights (the
// symbolic-dims path); where the stored graph cannot be planned again, loading fails naming both.
// Format 1 (no device, no artifacts) is still read: its plan is used on the emulated device only.
//
// Everything read is checked before use: lengths and offsets against the bytes left (64-bit),
// enums against their ranges, every index against its table, the restored plan by ValidatePlan
// and against the region's input shapes and weight buffers. A bad blob is a Status naming what
// is wrong and saying to re-export; it never reaches a kernel.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "compat_info.h"  // PlanOrigin
#include "device.h"
#include "lowering.h"
#include "options.h"
#include "ort_api.h"
#include "region.h"

namespace phoenix {

constexpr char kEpContextMagic[8] = {'P', 'H', 'X', 'N', 'P', 'U', 'C', 'X'};
constexpr uint32_t kEpContextFormatVersion = 2;    // written
constexpr uint32_t kEpContextOldestFormat = 1;     // read: 1 (no device / NPU artifacts) and 2
constexpr size_t kEpContextHeaderBytes = 40;

// A region as read from a blob, ready for CompiledRegion::Create with a RegionRestore.
struct DecodedContext {
  uint32_t format = kEpContextFormatVersion;
  std::string device;         // format 2: where the plan was made ("npu" | "emulator"); "" in format 1
  std::string npu_artifacts;  // format 2: the NPU artifacts' identity then ("none" off the NPU); "" in format 1
  RegionGraph region;
  Precision precision = Precision::kBF16;
  bool fuse_attention = true;
  struct Weight {
    uint8_t role = 0;      // EpContextCodec::Role
    std::string name;      // activation and INT8 weights: the value name
    SlotType type = SlotType::kActivation;
    int64_t num_elements = 0;
    std::vector<uint8_t> bytes;
  };
  std::vector<Weight> weights;
  bool has_plan = false;
  Plan plan;  // weight tensors' weight.buffer holds an index into `weights` until restored
};

class EpContextCodec {
 public:
  enum Role : uint8_t { kActivationWeight = 0, kF32Vector = 1, kInt8Data = 2, kInt8Scales = 3, kInt8ZeroPoints = 4 };

  // The blob of a compiled region (header included); `origin`: where its plan is made (compat_info.h).
  static Status Serialize(const CompiledRegion& region, const std::string& ep_name, const PlanOrigin& origin,
                          std::string* blob);
  // Parses and checks a blob written by Serialize (by this EP: `ep_name`), format 1 or 2.
  static Status Decode(const std::string& blob, const std::string& ep_name, DecodedContext* out);
  // Why the decoded plan must not run where plans are made `here` ("" = it may).
  static std::string StalePlanReason(const DecodedContext& ctx, const PlanOrigin& here);
  // Drops a stale plan so that the region is planned again from its stored graph: Status naming
  // `reason` and what fails where the stored graph cannot be planned again.
  static Status DropPlan(const std::string& reason, DecodedContext* ctx);
  // The compiled region of a decoded blob: weights uploaded from it, the stored plan used as is.
  static Status Restore(DecodedContext ctx, const std::string& name, const ProviderOptions& options,
                        std::shared_ptr<Device> device, const OrtLogger* logger, std::unique_ptr<CompiledRegion>* out);
};

// An EPContext node (com.microsoft) and its `source` attribute ("" when it has none).
bool IsEpContextNode(Ort::ConstNode node, std::string* source);

// The EPContext node for `fused_node` holding `blob` (embed mode 1) or the name of a file
// written beside the compiled model (embed mode 0). `inputs` are the names ORT feeds at run time.
Status CreateEpContextNode(const EpContextSettings& settings, const OrtGraph* graph, Ort::ConstNode fused_node,
                           const std::vector<std::string>& inputs, const std::string& ep_name,
                           const std::string& blob, OrtNode** node);

// The blob of an EPContext node of this EP (from the attribute, or the file it names, resolved
// against the model's folder).
Status ReadEpContextBlob(const OrtGraph* graph, Ort::ConstNode node, std::string* blob);

}  // namespace phoenix
