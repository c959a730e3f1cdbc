// Runtime CPU feature detection: kernels are compiled for several ISAs with target attributes and
// the best one the running CPU supports is chosen once, so one binary runs on any x86-64.
#pragma once

namespace sslinv {

enum class CpuIsa { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };

CpuIsa DetectCpuIsa();          // cached after the first call; SSL_INV_ISA=generic|avx2|avx512 caps it
const char* CpuIsaName(CpuIsa isa);

}  // namespace sslinv
