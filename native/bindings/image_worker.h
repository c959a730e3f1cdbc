// The libuv worker behind the async image ops (resizeCropNormalizeU8Async, applyAugmentU8Async):
// it owns a copy of the source pixels (the caller's ArrayBuffer may be reused or detached while the
// work waits in the queue) and a reference to the output tensor until the promise settles, runs the
// op single-threaded on a libuv thread (Run, with parallel = false in the kernels), and settles the
// promise from the op's Status: resolved, or rejected with an Error carrying the Status's stable code.
#pragma once
#include <napi.h>

#include <cstdint>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "bindings/napi_util.h"
#include "core/status.h"
#include "core/tensor.h"
#include "ops/resample.h"

namespace sslinv {
namespace napi {

class ImagePromiseWorker : public Napi::AsyncWorker {
 public:
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  // Copies src's pixels (may throw std::bad_alloc: the caller reports ERR_OUT_OF_MEMORY) and keeps
  // `out` alive.
  ImagePromiseWorker(Napi::Env env, const char* name, const ImageU8View& src, Tensor out)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), out_(std::move(out)) {
    pixels_.assign(src.data, src.data + src.height * src.width * src.channels);
    src_ = src;
    src_.data = pixels_.data();
  }

  // The op, on the worker thread, reading the owned copy of the source.
  virtual Status Run(const ImageU8View& src) = 0;

 private:
  void Execute() override { status_ = Run(src_); }

  void OnOK() override {
    Napi::Env env = Env();
    out_ = Tensor();  // release our reference to the output buffer
    if (status_.ok()) {
      deferred_.Resolve(env.Undefined());
    } else {
      Napi::Error e = Napi::Error::New(env, status_.message());
      e.Set("code", Napi::String::New(env, CodeName(status_.code())));
      deferred_.Reject(e.Value());
    }
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  Napi::Promise::Deferred deferred_;
  std::vector<uint8_t> pixels_;
  ImageU8View src_{};
  Tensor out_;
  Status status_;
};

// Makes a W (an ImagePromiseWorker) from `args`, queues it and returns its promise; copying the
// pixels running out of memory throws ERR_OUT_OF_MEMORY in `what`'s name, nothing queued.
template <typename W, typename... Args>
Napi::Value QueueImageWorker(Napi::Env env, const char* what, Args&&... args) {
  W* w = nullptr;
  try {
    w = new W(env, std::forward<Args>(args)...);
  } catch (const std::bad_alloc&) {
    ThrowCode(env, "ERR_OUT_OF_MEMORY", std::string(what) + ": out of memory copying the image");
  }
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace napi
}  // namespace sslinv
