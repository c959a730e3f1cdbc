// The addon's single N-API module: every binding file registers its functions here. Kernels live in
// native/cpu (and native/cuda); this layer only converts arguments and errors.
#include <napi.h>

#include "bindings/bindings.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  sslinv::napi::RegisterTensorBindings(env, exports);
  sslinv::napi::RegisterOpBindings(env, exports);
  sslinv::napi::RegisterImageBindings(env, exports);
  sslinv::napi::RegisterGeometricBindings(env, exports);
  sslinv::napi::RegisterColorBindings(env, exports);
  sslinv::napi::RegisterLinalgBindings(env, exports);
  sslinv::napi::RegisterProbeBindings(env, exports);
  sslinv::napi::RegisterDeviceBindings(env, exports);
  sslinv::napi::RegisterCudaViewBindings(env, exports);
  sslinv::napi::RegisterCudaLbfgsbBindings(env, exports);
  sslinv::napi::RegisterCudaRandomBindings(env, exports);
  sslinv::napi::RegisterConvBackwardBindings(env, exports);
  sslinv::napi::RegisterLayerBackwardBindings(env, exports);
  sslinv::napi::RegisterAugmentBindings(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(ssl_inv, Init)
