// Compiled instead of xrt_device.cc when no modern XRT was found at configure time
// (cmake/XrtDevice.cmake): the NPU device factory exists and says what is missing.
#include "devices/xrt/xrt_device.h"

namespace phoenix {
namespace {
const char* kNoXrt =
    "this build has no XRT device: built without a modern XRT (/opt/xilinx/xrt with xrt::hw_context); "
    "install AMD's xdna-driver + XRT and rebuild";
}  // namespace

bool XrtAvailable(std::string* why_not) {
  if (why_not) *why_not = kNoXrt;
  return false;
}

Status CreateXrtDevice(const std::string& /*manifest_path*/, std::unique_ptr<Device>* /*out*/) {
  return Status::Error(kNoXrt);
}

}  // namespace phoenix
