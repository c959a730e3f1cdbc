#!/usr/bin/env bash
# Builds, on the CPU machine, the emulation test programs that also build for a GPU (those with a
# "// gpu-build: NVCC-FLAGS" line, see test/cuda-emu/emu.test.ts) with nvcc into build-gpu-tests/,
# for bench/device/run.sh to run first on the GPU machine, which builds nothing. Each is the same
# source the emulator runs, so a GPU and the emulator answer the same checks.
#   bash bench/device/build-gpu-tests.sh    (NVCC=path/to/nvcc to choose the compiler)
set -euo pipefail
cd "$(dirname "$0")/../.."
NVCC=${NVCC:-nvcc}
mkdir -p build-gpu-tests
built=0
for src in test/cuda-emu/*_emu_test.cc; do
  flags=$(sed -n 's|^// gpu-build: ||p' "$src" | head -1)
  [[ -n $flags ]] || continue
  name=$(basename "$src" _emu_test.cc)
  sources=()
  grep -q '^// emu-kernel-source: none$' "$src" || sources+=("native/cuda/$name.cu")
  # shellcheck disable=SC2086 # the flags are words
  "$NVCC" -x cu -std=c++17 -O2 $flags -I native "$src" "${sources[@]}" -o "build-gpu-tests/$name"
  echo "built build-gpu-tests/$name ($flags)"
  built=$((built + 1))
done
echo "$built GPU test program(s) in build-gpu-tests/"
