// Emulator test of which devices the runtime (native/cuda/runtime.cc) lets the kernels run on:
//   - ArchitecturesRunOn, the rule from a CMAKE_CUDA_ARCHITECTURES list to "this build has code for
//     compute capability X.Y" (SASS within a major version, PTX for anything newer, arch-specific
//     "a"/"f" targets only on their own card, lists it cannot read left undecided), on a table;
//   - the emulated device as other cards (the emu-env runs): its properties, whether CheckDevice
//     accepts it and why not, and ProbeKernelImage / the first stream refusing a device whose kernel
//     image is missing.
// emu-sources: native/cuda/runtime.cc native/core/status.cc
// emu-env: SSL_INV_CUDA_EMU_CC=8.6
// emu-env: SSL_INV_CUDA_EMU_CC=7.5
// emu-env: SSL_INV_CUDA_EMU_NO_KERNEL_IMAGE=1
#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda/kernel_image.cuh"
#include "cuda/runtime.h"
#include "emu_check.h"

namespace {

using sslinv::Device;
using sslinv::DeviceType;
using namespace sslinv::cuda;

void Rule(const std::string& archs, int major, int minor, bool runs, bool decided = true) {
  bool d = false;
  const bool r = ArchitecturesRunOn(archs, major, minor, &d);
  emu_check::Report(d == decided && (!decided || r == runs),
                    "'" + archs + "' on " + std::to_string(major) + "." + std::to_string(minor) + ": " +
                        (decided ? (runs ? "runs" : "does not run") : "undecided"),
                    "got " + std::string(d ? (r ? "runs" : "does not run") : "undecided"));
}

bool EnvIs(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, value) == 0;
}

}  // namespace

int main() {
  const std::string dflt = "80-real,90-real,90-virtual";
  Rule(dflt, 8, 0, true);
  Rule(dflt, 8, 6, true);   // sm_80 SASS runs on 8.6 and 8.9
  Rule(dflt, 8, 9, true);
  Rule(dflt, 9, 0, true);
  Rule(dflt, 10, 0, true);  // the 9.0 PTX, compiled by the driver
  Rule(dflt, 12, 0, true);
  Rule(dflt, 7, 5, false);
  Rule(dflt, 7, 0, false);
  Rule("86-real", 8, 0, false);  // SASS never runs on a lower minor version
  Rule("86-real", 8, 9, true);
  Rule("90-real", 10, 0, false);  // nor on another major version
  Rule("90a-real", 9, 0, true);
  Rule("90a-real;90a-virtual", 10, 0, false);  // arch-specific code runs on its own card only
  Rule("80", 8, 6, true);  // no suffix: SASS and PTX
  Rule("80", 9, 0, true);
  Rule("80-virtual", 8, 0, true);
  Rule("80-virtual", 7, 5, false);
  Rule("native", 8, 0, false, false);
  Rule("all-major", 8, 0, false, false);
  Rule("unknown", 8, 0, false, false);
  Rule("", 8, 0, false, false);
  Rule("80-realish", 8, 0, false, false);

  // The emulated device as the emu-env run makes it.
  emu_check::Report(DeviceCount() == 1, "one device");
  DeviceProps p;
  emu_check::Report(GetDeviceProps(0, &p).ok(), "its properties are read, usable or not");
  const bool old_card = EnvIs("SSL_INV_CUDA_EMU_CC", "7.5");
  const bool no_image = EnvIs("SSL_INV_CUDA_EMU_NO_KERNEL_IMAGE", "1");
  const size_t smem = EnvIs("SSL_INV_CUDA_EMU_CC", "8.6") ? 99 * 1024 : old_card ? 64 * 1024 : 227 * 1024;
  emu_check::Report(p.smem_optin == smem, "shared memory per block: " + std::to_string(smem), std::to_string(p.smem_optin));
  emu_check::Report(p.usable == !old_card, old_card ? "7.5: not usable" : "usable by the architecture rule");
  const sslinv::Status check = CheckDevice(Device{DeviceType::kCUDA, 0});
  emu_check::Report(check.ok() == !old_card, old_card ? "CheckDevice refuses it" : "CheckDevice accepts it", check.message());
  if (old_card) {
    emu_check::Report(check.code() == sslinv::Code::kDeviceUnavailable &&
                          check.message().find("compute capability 7.5) cannot run this build's kernels") != std::string::npos &&
                          p.unusable_reason == check.message(),
                      "the refusal names the card and says why", check.message());
    return emu_check::Finish();
  }
  const cudaError_t probe = ProbeKernelImage();
  emu_check::Report((probe == cudaSuccess) == !no_image, no_image ? "ProbeKernelImage: no kernel image" : "ProbeKernelImage: the kernels have code for it");
  cudaStream_t s = nullptr;
  const sslinv::Status first = GetStream(0, &s);
  emu_check::Report(first.ok() == !no_image, no_image ? "the first stream is refused" : "the first stream is made", first.message());
  if (no_image) {
    emu_check::Report(first.code() == sslinv::Code::kDeviceUnavailable && first.message().find("has no code in this build") != std::string::npos,
                      "kDeviceUnavailable naming why", first.message());
    const sslinv::Status later = CheckDevice(Device{DeviceType::kCUDA, 0});
    emu_check::Report(!later.ok() && later.message() == first.message(), "and the device is refused from then on", later.message());
  }
  return emu_check::Finish();
}
