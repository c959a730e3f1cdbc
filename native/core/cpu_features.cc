// See cpu_features.h.
#include "core/cpu_features.h"

#include <cstdlib>
#include <cstring>

namespace sslinv {

namespace {
CpuIsa Detect() {
  CpuIsa best = CpuIsa::kGeneric;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = CpuIsa::kAvx2;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
    best = CpuIsa::kAvx512;
  }
#endif
  // A cap for testing every kernel path on one machine.
  if (const char* env = std::getenv("SSL_INV_ISA")) {
    CpuIsa cap = best;
    if (std::strcmp(env, "generic") == 0) cap = CpuIsa::kGeneric;
    if (std::strcmp(env, "avx2") == 0) cap = CpuIsa::kAvx2;
    if (std::strcmp(env, "avx512") == 0) cap = CpuIsa::kAvx512;
    if (static_cast<int>(cap) < static_cast<int>(best)) best = cap;
  }
  return best;
}
}  // namespace

CpuIsa DetectCpuIsa() {
  static const CpuIsa isa = Detect();
  return isa;
}

const char* CpuIsaName(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kGeneric: return "generic";
    case CpuIsa::kAvx2: return "avx2";
    case CpuIsa::kAvx512: return "avx512";
  }
  return "generic";
}

}  // namespace sslinv
