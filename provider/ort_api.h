// ONNX Runtime API access for the whole provider. The C++ wrappers are used with manual
// initialisation: CreateEpFactories calls InitOrtApi() with the API of the loading runtime.
#pragma once

#define ORT_API_MANUAL_INIT
#include "onnxruntime_cxx_api.h"
#undef ORT_API_MANUAL_INIT

#include <string>

#include "common/status.h"

namespace phoenix {

extern const OrtApi* g_ort;
extern const OrtEpApi* g_ep_api;

void InitOrtApi(const OrtApi* api);

// Status -> OrtStatus* for the C ABI (nullptr is success): kInvalidArgument becomes
// ORT_INVALID_ARGUMENT, anything else ORT_EP_FAIL; the message gets `prefix` in front.
OrtStatus* ToOrtStatus(const Status& s, const std::string& prefix = "PhoenixNPU: ");

// Log through an ORT logger (session or default). Never fails.
void Log(const OrtLogger* logger, OrtLoggingLevel level, const std::string& message);

}  // namespace phoenix

// Wraps the body of every function called by ORT through the C ABI: exceptions (including
// std::bad_alloc and Ort::Exception from the C++ wrappers) become an OrtStatus*.
#define PHX_ABI_BEGIN try {
#define PHX_ABI_END                                                                        \
  }                                                                                        \
  catch (const Ort::Exception& e) {                                                        \
    return ::phoenix::g_ort->CreateStatus(e.GetOrtErrorCode(), e.what());                  \
  }                                                                                        \
  catch (const std::bad_alloc&) {                                                          \
    return ::phoenix::g_ort->CreateStatus(ORT_EP_FAIL, "PhoenixNPU: out of host memory");  \
  }                                                                                        \
  catch (const std::exception& e) {                                                        \
    return ::phoenix::g_ort->CreateStatus(ORT_EP_FAIL, (std::string("PhoenixNPU: ") + e.what()).c_str()); \
  }                                                                                        \
  catch (...) {                                                                            \
    return ::phoenix::g_ort->CreateStatus(ORT_EP_FAIL, "PhoenixNPU: unknown internal error"); \
  }
