#!/usr/bin/env bash
# Prepares, on the CPU machine, everything bench/device/run.sh needs on the GPU machine (which builds
# nothing and has no Node): the addon (incremental), the bench scripts (build-bench/), the GPU builds
# of the emulation tests (build-gpu-tests/), then ../shared/device/pack.sh's .device/ with Node and
# the few node_modules the scripts load. Run from anywhere; then call the device with carry [".device"]
# and the command in run.sh's header.
#   bash bench/device/prepare.sh    (SHARED=path/to/shared if it is not ../shared beside the checkout)
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
[[ -x $SHARED/device/pack.sh || -f $SHARED/device/pack.sh ]] || { echo "no $SHARED/device/pack.sh (set SHARED)" >&2; exit 1; }
[[ -d node_modules ]] || npm ci --no-audit --no-fund
node scripts/build-native.js
npx tsc -p tsconfig.bench.json
bash bench/device/build-gpu-tests.sh
mods=(yauzl pend commander sharp @img detect-libc semver cli-progress string-width strip-ansi ansi-regex emoji-regex is-fullwidth-code-point)
bash "$SHARED/device/pack.sh" build/Release/ssl_inv.node build-bench build-gpu-tests package.json bench/device "${mods[@]/#/node_modules/}"
du -sh .device
