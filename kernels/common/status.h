// A small internal status type. Nothing inside the provider throws across the C ABI: code
// returns Status, and the ABI entry points turn it (and any stray exception) into OrtStatus*.
#pragma once

#include <string>
#include <utility>

namespace phoenix {

// What kind of failure, chosen where the error arises (it becomes ORT's error code).
enum class StatusCode { kOk, kFail, kInvalidArgument };

class Status {
 public:
  Status() = default;
  static Status OK() { return Status(); }
  static Status Error(std::string message) { return Status(StatusCode::kFail, std::move(message)); }
  // The caller's input (an option, a feed) is wrong, not the provider.
  static Status InvalidArgument(std::string message) {
    return Status(StatusCode::kInvalidArgument, std::move(message));
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

#define PHX_RETURN_IF_ERROR(expr)         \
  do {                                    \
    ::phoenix::Status _s = (expr);        \
    if (!_s.ok()) return _s;              \
  } while (0)

}  // namespace phoenix
