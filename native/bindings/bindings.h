// Registration entry points: one per binding file, called from native/addon.cc.
#pragma once
#include <napi.h>

namespace sslinv {
namespace napi {

void RegisterTensorBindings(Napi::Env env, Napi::Object exports);
void RegisterOpBindings(Napi::Env env, Napi::Object exports);
void RegisterImageBindings(Napi::Env env, Napi::Object exports);
void RegisterGeometricBindings(Napi::Env env, Napi::Object exports);
void RegisterColorBindings(Napi::Env env, Napi::Object exports);
void RegisterLinalgBindings(Napi::Env env, Napi::Object exports);
void RegisterProbeBindings(Napi::Env env, Napi::Object exports);
void RegisterDeviceBindings(Napi::Env env, Napi::Object exports);
void RegisterCudaViewBindings(Napi::Env env, Napi::Object exports);
void RegisterCudaLbfgsbBindings(Napi::Env env, Napi::Object exports);
void RegisterCudaRandomBindings(Napi::Env env, Napi::Object exports);
void RegisterConvBackwardBindings(Napi::Env env, Napi::Object exports);
void RegisterLayerBackwardBindings(Napi::Env env, Napi::Object exports);
void RegisterAugmentBindings(Napi::Env env, Napi::Object exports);

}  // namespace napi
}  // namespace sslinv
