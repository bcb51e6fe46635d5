#include "devices/xrt/npu_probe.h"

#include <algorithm>

#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "devices/xrt/manifest.h"
#include "devices/xrt/xrt_device.h"

namespace phoenix {
namespace {

bool Exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

std::string Join(const std::string& root, const std::string& rel) {
  return root.empty() || root == "/" ? "/" + rel : root + "/" + rel;
}

NpuCheck Driver(const std::string& sys_root) {
  const std::string mod = Join(sys_root, "sys/module/amdxdna");
  if (Exists(mod)) {
    std::string version;
    std::ifstream v(mod + "/version");
    if (v) std::getline(v, version);
    return {"amdxdna driver", true, "loaded" + (version.empty() ? "" : " version " + version), ""};
  }
  return {"amdxdna driver", false, "not loaded",
          "needs a Ryzen 7040/8040 (Phoenix / Hawk Point) NPU and Linux >= 6.14 (amdxdna is mainline), or AMD's "
          "xdna-driver built for your kernel; then `sudo modprobe amdxdna`"};
}

NpuCheck DeviceNode(const std::string& accel) {
  if (!Exists(accel))
    return {"NPU device", false, accel + " missing",
            "appears when amdxdna binds to the NPU; check `dmesg | grep -i amdxdna` and that the NPU is enabled in "
            "the BIOS (IPU / NPU setting)"};
  if (::access(accel.c_str(), R_OK | W_OK) != 0)
    return {"NPU device", false, accel + " present but not read/writable by this user",
            "add yourself to the 'render' group (sudo usermod -aG render $USER) and log in again"};
  return {"NPU device", true, accel + " present, read/writable", ""};
}

NpuCheck Firmware(const std::string& dir) {
  std::vector<std::string> found;
  if (DIR* d = ::opendir(dir.c_str())) {  // one level of subfolders: amdnpu/<device id>/npu.sbin
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      found.push_back(name);
    }
    ::closedir(d);
  }
  if (found.empty())
    return {"NPU firmware", false, dir + " missing or empty",
            "install linux-firmware >= 2024-05 (amdnpu/1502_00/npu.sbin for Phoenix), or the firmware from AMD's "
            "xdna-driver"};
  std::string list;
  for (size_t i = 0; i < found.size() && i < 4; ++i) list += (i ? ", " : "") + found[i];
  return {"NPU firmware", true, dir + ": " + list + (found.size() > 4 ? " ..." : ""), ""};
}

NpuCheck Xrt() {
  std::string why;
  if (XrtAvailable(&why)) return {"XRT", true, "XRT opened NPU device 0", ""};
  const bool built_without = why.find("this build has no XRT device") != std::string::npos;
  std::string todo = built_without
                         ? "install XRT >= 2.21.75 from AMD's xdna-driver build (/opt/xilinx/xrt), source "
                           "/opt/xilinx/xrt/setup.sh, then rebuild phoenix-npu so the XRT device is compiled in"
                         : "check the XRT install (xrt-smi examine) and the NPU driver";
  if (built_without && Exists("/opt/xilinx/xrt/include/xrt/xrt_hw_context.h"))
    todo = "an XRT is installed in /opt/xilinx/xrt but this build predates it: rebuild phoenix-npu";
  return {"XRT", false, why, todo};
}

NpuCheck KernelManifest(const std::string& path) {
  xrt_device::Manifest m;
  Status s = xrt_device::LoadManifest(path, &m, /*check_artifacts=*/true);
  if (!s.ok())
    return {"kernel manifest", false, s.message(),
            "build the NPU kernels (`make` in kernels/, needs the toolchain pinned in "
            "kernels/common/aie/toolchain.json) and point --manifest / $PHOENIX_NPU_MANIFEST / the provider option "
            "`manifest` at the generated manifest"};
  if (m.kernels.empty()) return {"kernel manifest", false, path + " lists no kernels", "build the NPU kernels"};
  const std::string built = std::string(m.one_xclbin_built ? "the one xclbin" : "") +
                            (m.one_xclbin_built && m.per_stage_built ? " and " : "") +
                            (m.per_stage_built ? "every stage's own xclbin" : "");
  return {"kernel manifest", true, path + ": " + std::to_string(m.kernels.size()) + " kernels; built: " + built, ""};
}

NpuCheck Mode(const std::string& path) {
  xrt_device::Manifest m;
  if (!xrt_device::LoadManifest(path, &m, /*check_artifacts=*/true).ok())
    return {"NPU mode", false, "no usable kernel manifest", "see the kernel manifest check"};
  const xrt_device::ModeChoice c = ChooseNpuModeFor(m);
  if (!c.ok) return {"NPU mode", false, c.why, "docs/npu.md section 5a: the bring-up order"};
  return {"NPU mode", true, std::string(xrt_device::NpuModeName(c.mode)) + ": " + c.why, ""};
}

}  // namespace

xrt_device::ModeChoice ChooseNpuModeFor(const xrt_device::Manifest& m) {
  xrt_device::ModeFacts f;
  if (const char* env = std::getenv("PHOENIX_NPU_MODE")) f.requested = env;
  f.one_xclbin_built = m.one_xclbin_built;
  f.per_stage_built = m.per_stage_built;
  std::ifstream rec(m.dir + "/npu_bringup.txt");
  if (rec) {
    std::string text((std::istreambuf_iterator<char>(rec)), std::istreambuf_iterator<char>()), err;
    if (!xrt_device::ParseBringupRecord(text, &f.record, &err)) {
      xrt_device::ModeChoice c;
      c.why = m.dir + "/npu_bringup.txt: " + err;
      return c;
    }
  }
  return xrt_device::ChooseNpuMode(f);
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

std::vector<NpuCheck> ProbeNpu(const NpuProbeRoots& roots) {
  std::vector<NpuCheck> checks;
  checks.push_back(Driver(roots.sys_root));
  checks.push_back(DeviceNode(roots.accel));
  checks.push_back(Firmware(roots.firmware));
  checks.push_back(Xrt());
  const bool hardware_ok = std::all_of(checks.begin(), checks.end(), [](const NpuCheck& c) { return c.ok; });
  const std::string manifest = roots.manifest.empty() ? DefaultManifestPath() : roots.manifest;
  if (roots.manifest_only_with_npu && !hardware_ok) {
    checks.push_back({"kernel manifest", false, "not read (no usable NPU)", ""});
  } else {
    checks.push_back(KernelManifest(manifest));
    if (checks.back().ok) checks.push_back(Mode(manifest));
  }
  return checks;
}

bool NpuPresent(const NpuProbeRoots& roots) { return Exists(Join(roots.sys_root, "sys/module/amdxdna")) || Exists(roots.accel); }

bool NpuUsable(const std::vector<NpuCheck>& checks, std::string* why_not, std::string* remedy) {
  for (const NpuCheck& c : checks)
    if (!c.ok) {
      if (why_not) *why_not = c.name + ": " + c.found;
      if (remedy) *remedy = c.todo;
      return false;
    }
  return true;
}

}  // namespace phoenix
