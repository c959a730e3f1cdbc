// Probe kernels exposed to JS (symmetric eigensolver and the probes' heavy loops; being written).
#include "bindings/bindings.h"

namespace sslinv {
namespace napi {

void RegisterProbeBindings(Napi::Env env, Napi::Object exports) {}

}  // namespace napi
}  // namespace sslinv
