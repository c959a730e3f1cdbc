// Geometric ops exposed to JS (being written).
#include "bindings/bindings.h"

namespace sslinv {
namespace napi {

void RegisterGeometricBindings(Napi::Env env, Napi::Object exports) {}

}  // namespace napi
}  // namespace sslinv
