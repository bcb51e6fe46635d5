# The XRT (real Phoenix NPU) device. Included by CMakeLists.txt after target phoenix_provider exists.
#
# - provider/devices/xrt/manifest.cc (the one kernel manifest parser), npu_probe.cc ("is there a
#   usable NPU, and if not why") and manifest_api.cc (both exported to Python) are ALWAYS
#   compiled: tests, `phoenix-npu doctor` and `phoenix-npu plan --check` need them without an NPU.
# - provider/devices/xrt/xrt_device.cc is compiled only with a modern XRT: one that has
#   xrt::hw_context (AMD's xdna-driver build installs it in /opt/xilinx/xrt). Debian bookworm's
#   libxrt-dev (XRT 2.13) has no hw_context and is skipped with a message.
# - Otherwise provider/devices/xrt/xrt_stub.cc provides CreateXrtDevice / XrtAvailable, which
#   report that this build has no XRT device.
#
# Inputs: PHOENIX_WITH_XRT (option, ON), XRT_ROOT (CMake or environment variable).

set(_phx_xrt_dir "${CMAKE_CURRENT_LIST_DIR}/../provider/devices/xrt")

# The manifest's JSON parser: nlohmann/json 3.11.x (header-only, MIT: LICENSES/nlohmann-json.txt),
# from Debian's nlohmann-json3-dev, which scripts/setup.sh installs. Pinned to the 3.11 series
# (bookworm 3.11.2, trixie 3.11.3): the SAX interface manifest.cc implements is checked there.
find_package(nlohmann_json 3.11 CONFIG QUIET)
if(NOT nlohmann_json_FOUND OR nlohmann_json_VERSION VERSION_GREATER_EQUAL 3.12)
  message(FATAL_ERROR "PhoenixNPU needs nlohmann/json 3.11.x for the kernel manifest parser "
                      "(found: ${nlohmann_json_VERSION}). Install it with `apt-get install nlohmann-json3-dev` "
                      "(scripts/setup.sh does so as root), or point nlohmann_json_DIR at its CMake package.")
endif()
target_link_libraries(phoenix_provider PRIVATE nlohmann_json::nlohmann_json)
target_sources(phoenix_provider PRIVATE "${_phx_xrt_dir}/manifest.cc" "${_phx_xrt_dir}/npu_probe.cc"
                                     "${_phx_xrt_dir}/manifest_api.cc")

set(_phx_xrt_found FALSE)
set(_phx_xrt_why "")
if(NOT PHOENIX_WITH_XRT)
  set(_phx_xrt_why "PHOENIX_WITH_XRT=OFF")
else()
  set(_phx_roots "")
  if(XRT_ROOT)
    list(APPEND _phx_roots "${XRT_ROOT}")
  endif()
  if(DEFINED ENV{XRT_ROOT})
    list(APPEND _phx_roots "$ENV{XRT_ROOT}")
  endif()
  list(APPEND _phx_roots "/opt/xilinx/xrt")

  find_path(PHOENIX_XRT_INCLUDE_DIR NAMES xrt/xrt_device.h
            HINTS ${_phx_roots} PATH_SUFFIXES include)
  find_library(PHOENIX_XRT_COREUTIL NAMES xrt_coreutil
               HINTS ${_phx_roots} PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu)

  if(NOT PHOENIX_XRT_INCLUDE_DIR OR NOT PHOENIX_XRT_COREUTIL)
    set(_phx_xrt_why "no XRT found (looked in XRT_ROOT, /opt/xilinx/xrt and the system paths)")
  else()
    set(_phx_hw_ctx "")
    foreach(_h xrt/xrt_hw_context.h xrt/experimental/xrt_hw_context.h experimental/xrt_hw_context.h)
      if(EXISTS "${PHOENIX_XRT_INCLUDE_DIR}/${_h}")
        set(_phx_hw_ctx "${_h}")
        break()
      endif()
    endforeach()
    if(NOT _phx_hw_ctx)
      set(_phx_xrt_why "the XRT in ${PHOENIX_XRT_INCLUDE_DIR} has no xrt::hw_context (too old: Debian's "
                       "libxrt-dev 2.13 cannot drive the NPU); install XRT from AMD's xdna-driver build "
                       "(/opt/xilinx/xrt) or set XRT_ROOT")
    else()
      set(_phx_xrt_found TRUE)
    endif()
  endif()
endif()

if(_phx_xrt_found)
  message(STATUS "PhoenixNPU: XRT device ON (XRT headers ${PHOENIX_XRT_INCLUDE_DIR}, ${_phx_hw_ctx}; "
                 "library ${PHOENIX_XRT_COREUTIL})")
  target_sources(phoenix_provider PRIVATE "${_phx_xrt_dir}/xrt_device.cc")
  target_include_directories(phoenix_provider SYSTEM PRIVATE "${PHOENIX_XRT_INCLUDE_DIR}")
  target_link_libraries(phoenix_provider PUBLIC "${PHOENIX_XRT_COREUTIL}")
else()
  message(STATUS "PhoenixNPU: XRT device OFF: ${_phx_xrt_why}. The provider runs on the emulated device; "
                 "`phoenix-npu doctor` explains what the NPU path needs.")
  target_sources(phoenix_provider PRIVATE "${_phx_xrt_dir}/xrt_stub.cc")
endif()
