#!/usr/bin/env bash
# Barrier sweep: do the emulation tests notice a missing __syncthreads()?
#
# For every `__syncthreads();` in native/cuda/*.cu, removes that one barrier (in a scratch copy of
# native/ and test/cuda-emu/; the working tree is never touched), rebuilds the emulation test program
# that covers the file (<family>_emu_test.cc, or one naming the file in its `// emu-sources:` line)
# and runs it. A line per barrier: "caught (N failed checks)" when the tests fail, "MISSED" when
# they still pass. A missed barrier is either redundant (another barrier already orders the same
# accesses; say so in a comment there) or a gap in the tests (add a case that needs it).
#
# Not part of `npm test` (about 5 minutes on 2 cores). Usage: bash test/cuda-emu/barrier-sweep.sh [file.cu ...]
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cxx=${CXX:-g++}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$root/native" "$scratch/native"
mkdir -p "$scratch/test" && cp -r "$root/test/cuda-emu" "$scratch/test/cuda-emu"
cd "$scratch"

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(native/cuda/*.cu)

# The test program for a kernel file: its family's, else the first that lists it in emu-sources.
program_for() {
  local f=$1 fam
  fam=$(basename "$f" .cu)
  if [ -f "test/cuda-emu/${fam}_emu_test.cc" ]; then echo "test/cuda-emu/${fam}_emu_test.cc"; return; fi
  grep -l "^// emu-sources:.*\b${f}\b" test/cuda-emu/*_emu_test.cc | head -n 1
}

caught=0 missed=0
for f in "${files[@]}"; do
  f=${f#"$root"/}
  prog=$(program_for "$f")
  lines=$(grep -n "__syncthreads();" "$f" | cut -d: -f1)
  [ -n "$lines" ] || continue
  if [ -z "$prog" ]; then echo "$f: no emulation test program covers it"; continue; fi
  fam=$(basename "$prog" _emu_test.cc)
  sources=("test/cuda-emu/${fam}_emu_test.cc" "native/cuda/${fam}.cu")
  read -r -a extra <<<"$(sed -nE 's#^// emu-sources: (.+)$#\1#p' "$prog")"
  for line in $lines; do
    cp "$f" "$scratch/orig"
    sed -i "${line}s/__syncthreads();/\/* barrier removed by the sweep *\//" "$f"
    if "$cxx" -std=c++20 -O2 -pthread -w -I native -x c++ "${sources[@]}" "${extra[@]}" -o "$scratch/exe" 2>"$scratch/build.log"; then
      timeout 600 "$scratch/exe" >"$scratch/run.log" 2>&1
      rc=$?
      bad=$(grep -c '^not ok - ' "$scratch/run.log")
      if [ "$rc" -ne 0 ]; then
        echo "$f:$line caught ($bad failed checks, exit $rc)"
        caught=$((caught + 1))
      else
        echo "$f:$line MISSED"
        missed=$((missed + 1))
      fi
    else
      echo "$f:$line does not build without it:"; head -n 5 "$scratch/build.log"
    fi
    cp "$scratch/orig" "$f"
  done
done
echo "# $caught caught, $missed missed"
