// What the XRT device does with a finished run's state (ert_cmd_state). No XRT dependency: the
// values are XRT's public enum (XRT 2.21.75 include/xrt/detail/ert.h, ERT_CMD_STATE_*), restated
// here so the policy compiles and is tested on machines without XRT (provider/tests/test_npu_bringup.cc).
//
// Policy (review M4): only COMPLETED is success. Every other state, and an exception from
// xrt::run::wait (XRT 2.21.75 throws xrt::run::aie_error for NPU command failures), is FATAL for the
// session: the cores of that context may be stopped mid-iteration, the firmware does not reload a PDI
// that is already loaded, so the next run of the same kernel would start on stale core state. A run
// that is not in a final state (the host timeout, or still running) is aborted first; XRT leaves that
// to the caller (xrt_kernel.h, run::wait).
#pragma once

#include <string>

namespace phoenix {
namespace xrt_device {

// ert_cmd_state, XRT 2.21.75
constexpr int kErtNew = 1;
constexpr int kErtQueued = 2;
constexpr int kErtRunning = 3;
constexpr int kErtCompleted = 4;
constexpr int kErtError = 5;
constexpr int kErtAbort = 6;
constexpr int kErtSubmitted = 7;
constexpr int kErtTimeout = 8;
constexpr int kErtNoResponse = 9;
constexpr int kErtSkError = 10;
constexpr int kErtSkCrashed = 11;

inline const char* ErtStateName(int state) {
  switch (state) {
    case kErtNew: return "ERT_CMD_STATE_NEW";
    case kErtQueued: return "ERT_CMD_STATE_QUEUED";
    case kErtRunning: return "ERT_CMD_STATE_RUNNING";
    case kErtCompleted: return "ERT_CMD_STATE_COMPLETED";
    case kErtError: return "ERT_CMD_STATE_ERROR";
    case kErtAbort: return "ERT_CMD_STATE_ABORT";
    case kErtSubmitted: return "ERT_CMD_STATE_SUBMITTED";
    case kErtTimeout: return "ERT_CMD_STATE_TIMEOUT";
    case kErtNoResponse: return "ERT_CMD_STATE_NORESPONSE";
    case kErtSkError: return "ERT_CMD_STATE_SKERROR";
    case kErtSkCrashed: return "ERT_CMD_STATE_SKCRASHED";
    default: return "an unknown ert_cmd_state";
  }
}

// The run must be aborted before the session is closed: it has not reached a final state.
inline bool ErtNeedsAbort(int state) {
  return state == kErtNew || state == kErtQueued || state == kErtRunning || state == kErtSubmitted ||
         state == kErtTimeout || state == kErtNoResponse;
}

// Empty when the run completed; else the session-ending message naming the state. `what` names the
// kernel and stage ("LayerNorm 1500x512 (PHX_LN_1500x512)"); `exception` is the text of an exception
// thrown by wait (then `state` is the run's state as far as known, or 0).
inline std::string RunFailure(const std::string& what, int state, const std::string& exception = "") {
  if (exception.empty() && state == kErtCompleted) return "";
  std::string msg = "NPU: " + what + " ended in ";
  msg += exception.empty() ? std::string(ErtStateName(state)) + " (state " + std::to_string(state) + ")"
                           : "an exception from xrt::run::wait: " + exception;
  if (state == kErtTimeout)
    msg += "; it timed out and was aborted. A kernel that hangs usually means its design exceeded an npu1 limit "
           "(run `phoenix-npu plan --check`) or the one-xclbin mode's multi-kernel context (xdna-driver #906): "
           "try PHOENIX_NPU_MODE=per-stage";
  msg += ". This session's NPU path is stopped (its cores may hold stale state and every result since the "
         "last synchronisation is invalid): create a new session, or use device=emulator. `phoenix-npu doctor` "
         "checks the driver, firmware and XRT.";
  return msg;
}

}  // namespace xrt_device
}  // namespace phoenix
