// Status: how native code reports failure. Native code never exits, aborts or throws across the
// N-API boundary on bad input; every fallible function returns a Status, and the binding layer
// (native/bindings) turns a failed Status into a JS Error whose `code` is one of the stable codes
// listed in src/errors.ts.
#pragma once
#include <string>
#include <utility>

namespace sslinv {

// Stable error codes shared with src/errors.ts. Keep the two lists in step.
enum class Code {
  kOk = 0,
  kInvalidArgument,   // ERR_INVALID_ARGUMENT
  kShapeMismatch,     // ERR_SHAPE_MISMATCH
  kDTypeMismatch,     // ERR_DTYPE_MISMATCH
  kOutOfMemory,       // ERR_OUT_OF_MEMORY
  kDeviceUnavailable, // ERR_DEVICE_UNAVAILABLE
  kInternal,          // ERR_NATIVE_INTERNAL
  kSingularMatrix,    // ERR_SINGULAR_MATRIX
  kDeviceFault,       // ERR_DEVICE_FAULT
};

const char* CodeName(Code code);

class Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
inline Status ShapeMismatch(std::string m) { return Status(Code::kShapeMismatch, std::move(m)); }
inline Status DTypeMismatch(std::string m) { return Status(Code::kDTypeMismatch, std::move(m)); }
inline Status OutOfMemory(std::string m) { return Status(Code::kOutOfMemory, std::move(m)); }

#define SSLINV_RETURN_IF_ERROR(expr)          \
  do {                                        \
    ::sslinv::Status _st = (expr);            \
    if (!_st.ok()) return _st;                \
  } while (0)

}  // namespace sslinv
