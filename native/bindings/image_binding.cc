// Image ops exposed to JS (PIL-exact resampling, crops, normalisation). Being written; see
// native/ops/resample.h.
#include "bindings/bindings.h"

namespace sslinv {
namespace napi {

void RegisterImageBindings(Napi::Env env, Napi::Object exports) {}

}  // namespace napi
}  // namespace sslinv
