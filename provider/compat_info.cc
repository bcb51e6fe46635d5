// The machine-dependent part of the compatibility string (compat_info.h): the NPU artifacts'
// identity.
#include "compat_info.h"

#include "devices/xrt/manifest.h"
#include "devices/xrt/npu_probe.h"  // DefaultManifestPath

namespace phoenix {

std::string NpuArtifactsIdentity(const std::string& manifest_path) {
  const std::string path = manifest_path.empty() ? DefaultManifestPath() : manifest_path;
  xrt_device::Manifest m;
  if (!xrt_device::LoadManifest(path, &m, /*check_artifacts=*/false).ok()) return "none";
  std::vector<std::string> files = {path, m.xclbin_path};
  for (const xrt_device::ManifestKernel& k : m.kernels)
    for (const xrt_device::ManifestStage& s : k.stages) {
      files.push_back(s.insts_path);
      if (!s.xclbin_path.empty()) files.push_back(s.xclbin_path);
    }
  return HashFiles(files);
}

PlanOrigin PlanOriginOf(bool on_npu, const std::string& manifest_path) {
  return on_npu ? PlanOrigin{"npu", NpuArtifactsIdentity(manifest_path)} : PlanOrigin{"emulator", "none"};
}

}  // namespace phoenix
