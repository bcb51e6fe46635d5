// A small internal status type. Nothing inside the provider throws across the C ABI: code
// returns Status, and the ABI entry points turn it (and any stray exception) into OrtStatus*.
#pragma once

#include <string>
#include <utility>

namespace phoenix {

class Status {
 public:
  Status() = default;
  static Status OK() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }

  bool ok() const { return !failed_; }
  const std::string& message() const { return message_; }

 private:
  explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}
  bool failed_ = false;
  std::string message_;
};

#define PHX_RETURN_IF_ERROR(expr)         \
  do {                                    \
    ::phoenix::Status _s = (expr);        \
    if (!_s.ok()) return _s;              \
  } while (0)

}  // namespace phoenix
