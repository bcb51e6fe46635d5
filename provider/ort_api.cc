#include "ort_api.h"

namespace phoenix {

const OrtApi* g_ort = nullptr;
const OrtEpApi* g_ep_api = nullptr;

void InitOrtApi(const OrtApi* api) {
  g_ort = api;
  g_ep_api = api->GetEpApi();
  Ort::InitApi(api);
}

OrtStatus* ToOrtStatus(const Status& s, const std::string& prefix) {
  if (s.ok()) return nullptr;
  const OrtErrorCode code = s.code() == StatusCode::kInvalidArgument ? ORT_INVALID_ARGUMENT : ORT_EP_FAIL;
  return g_ort->CreateStatus(code, (prefix + s.message()).c_str());
}

void Log(const OrtLogger* logger, OrtLoggingLevel level, const std::string& message) {
  if (logger == nullptr || g_ort == nullptr) return;
  OrtStatus* st = g_ort->Logger_LogMessage(logger, level, message.c_str(), "phoenix_npu", 0, "PhoenixNPU");
  if (st) g_ort->ReleaseStatus(st);
}

}  // namespace phoenix
