// Names of the stable error codes (see status.h and src/errors.ts).
#include "core/status.h"

namespace sslinv {

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "ERR_INVALID_ARGUMENT";
    case Code::kShapeMismatch: return "ERR_SHAPE_MISMATCH";
    case Code::kDTypeMismatch: return "ERR_DTYPE_MISMATCH";
    case Code::kOutOfMemory: return "ERR_OUT_OF_MEMORY";
    case Code::kDeviceUnavailable: return "ERR_DEVICE_UNAVAILABLE";
    case Code::kInternal: return "ERR_NATIVE_INTERNAL";
    case Code::kSingularMatrix: return "ERR_SINGULAR_MATRIX";
    case Code::kDeviceFault: return "ERR_DEVICE_FAULT";
  }
  return "ERR_NATIVE_INTERNAL";
}

}  // namespace sslinv
