#!/usr/bin/env bash
# The GPU device check, end to end, on the GPU machine (see ../shared/device/README.md):
#   0. the GPU builds of the emulation tests (build-gpu-tests/, from bench/device/build-gpu-tests.sh),
#      seconds each: mma_fragments (ldmatrix, cp.async, mma.sync) and wgmma_layout hold the hardware
#      to the layouts the emulator and our kernels assume; if wgmma_layout fails, the wgmma kernel is
#      left out of the whole run (SSL_INV_SKIP_WGMMA),
#   0b. ssl-inv selftest's checks (bench/device/selftest.ts): what a user runs on a new card,
#   1. PyTorch reference features for the parity check (torch_parity.py),
#   2. the PyTorch baselines, timed alone on the idle GPU (torch_baseline.py),
#   3. our check: op table, determinism, OOM, network parity, then our timings and the ratio table
#      (first, in a process of its own, bench/device/wgmma-smoke.ts: a failing sm_90a wgmma kernel is
#      left out of the rest of the run rather than poisoning its CUDA context),
#   3b. training on the GPU (bench/device/train-check.ts): the training ops against the CPU, ResNet-18/50
#      and MoCo v2 (one and two emulated GPUs) against PyTorch's fixtures, then a ResNet-50 training step
#      and a MoCo v2 step at batch 64 beside torch_baseline.py's,
#   3c. pre-training end to end (bench/device/pretrain-bench.ts): 2 epochs of 512 generated photos,
#      ResNet-50 MoCo v2 at batch 64, ours against main_moco.py's loop (pretrain_baseline.py, DataLoader
#      with a worker per core) in TF32 default and off,
#   4. the probes on the GPU (bench/probe.ts): a small search beside our CPU (and scikit-learn where
#      the machine has it), then the CIFAR-10-sized search (50,000 x 2,048, 10 classes, 45 C x 5 folds),
#   5. the 18-transform suite with ResNet-50 against the original's per-image pipeline (bench/device/suite.ts
#      and original_suite.py),
#   6. the CLI with its default device (bench/device/cli-default.ts: --device auto must pick the GPU and
#      give the CPU's results; the demo at its GPU defaults),
#   7. the convolution's kernel variants side by side (bench/device/conv-tune.ts: ResNet-50 and the 23
#      conv shapes per fp32 variant; the bf16 tier: staged bf16 vs the bf16-in-memory kernel vs cuDNN;
#      with NCU=1 also Nsight Compute's view of one 1x1 conv over wide C, the shape the fp32 kernel
#      was slowest on, for each fp32 variant),
#   8. compute-sanitizer memcheck over the parity part at small sizes, and over the training parity cases.
# SKIP_SELFTEST=1, SKIP_CHECK=1, SKIP_TRAIN=1, SKIP_PRETRAIN=1, SKIP_PROBE=1, SKIP_SUITE=1, SKIP_CLI=1, SKIP_TUNE=1 and SKIP_MEMCHECK=1 leave steps out. TIMING_ONLY=1 leaves
# out the check's parity part (a rerun of the timings after a passing parity run). PARITY_ONLY=1 leaves out the PyTorch
# references and timings and the check's own timings (when they were measured on this card before and no
# kernel they time has changed). BUDGET_S caps the whole run: every step's timeout is cut to what is left,
# so a run that must fit the device tool's per-call limit still ends with its logs written.
# Everything lands in $OUT (default /tmp/ssl-inv-device): logs, torch.json and our results JSON.
#
# Prepare on the CPU machine (nothing is built on the GPU machine): bash bench/device/prepare.sh, which does
#   npm install && npx tsc -p tsconfig.bench.json && bash bench/device/build-gpu-tests.sh
#   ../shared/device/pack.sh build/Release/ssl_inv.node build-bench build-gpu-tests package.json bench/device \
#       node_modules/yauzl node_modules/pend node_modules/commander node_modules/sharp node_modules/@img \
#       node_modules/detect-libc node_modules/semver node_modules/cli-progress node_modules/string-width \
#       node_modules/strip-ansi node_modules/ansi-regex node_modules/emoji-regex node_modules/is-fullwidth-code-point
#   (about 32 MB; sharp decodes the photo fixtures and writes the suite's images; commander is
#   imported by the results' version stamp and runs the CLI; cli-progress and its dependencies draw
#   the CLI's progress bars)
# then run with carry [".device"]:  source .device/unpack.sh && bash bench/device/run.sh
# A whole 15-minute session in one call (the machine is released 30 s after a call, and each start
# costs a minute or more): everything but the probes, suite and CLI, then the kernel variants in what
# is left, results to $OUT/results.tgz (timeout_s 540):
#   source .device/unpack.sh && D=$OUT && R=/tmp/r && mkdir -p $R && export OUT=$R && (BUDGET_S=420 SKIP_PROBE=1 \
#     SKIP_SUITE=1 SKIP_CLI=1 SKIP_TUNE=1 bash bench/device/run.sh > $R/run.log 2>&1; L=$((490-SECONDS)); ((L>30)) && \
#     BUDGET_S=$L PARITY_ONLY=1 SKIP_SELFTEST=1 SKIP_CHECK=1 SKIP_TRAIN=1 SKIP_PROBE=1 SKIP_SUITE=1 SKIP_CLI=1 SKIP_MEMCHECK=1 \
#     bash bench/device/run.sh > $R/run2.log 2>&1); tar czf $D/results.tgz -C $R .; grep -v "^ok" $R/run.log | tail -70
set -uo pipefail
OUT=${OUT:-/tmp/ssl-inv-device}
mkdir -p "$OUT"
STAMP=$(date -u +%Y-%m-%d)
DEADLINE=$((SECONDS + ${BUDGET_S:-100000}))
# cap T: T, or the seconds left before DEADLINE if fewer (at least 5, so a late step still reports)
cap() { local t=$1 left=$((DEADLINE - SECONDS)); ((left < t)) && t=$left; ((t < 5)) && t=5; echo "$t"; }
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/-$//')
echo "== $(date -u +%T) machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -2
ldconfig -p 2>/dev/null | grep -m2 libcublas.so || ls /usr/local/cuda/lib64/libcublas.so* 2>/dev/null | head -2
if [[ -d build-gpu-tests ]]; then
  echo "== $(date -u +%T) GPU builds of the emulation tests"
  for exe in build-gpu-tests/*; do
    [[ -f $exe && -x $exe ]] || continue
    name=$(basename "$exe")
    timeout "$(cap 60)" "$exe" > "$OUT/gpu-test-$name.log" 2>&1
    status=$?
    echo "$name: exit status $status, $(grep -c '^ok - ' "$OUT/gpu-test-$name.log") ok, $(grep -c '^not ok - ' "$OUT/gpu-test-$name.log") not ok"
    grep -m8 '^not ok - ' "$OUT/gpu-test-$name.log"
    if [[ -z ${SKIP_MEMCHECK:-} ]] && command -v compute-sanitizer > /dev/null; then
      # One block each: memcheck and racecheck (shared-memory hazards) take seconds here.
      for tool in memcheck racecheck; do
        timeout "$(cap 60)" compute-sanitizer --tool $tool --print-limit 10 "$exe" > "$OUT/gpu-test-$name-$tool.log" 2>&1
        echo "$name under $tool: exit status $?, $(grep -m1 'ERROR SUMMARY' "$OUT/gpu-test-$name-$tool.log")"
      done
    fi
    if ((status != 0)) && [[ $name == wgmma_layout ]]; then
      export SSL_INV_SKIP_WGMMA=1
      echo "wgmma_layout failed: the wgmma kernel is left out of this run"
    fi
  done
else
  echo "== $(date -u +%T) no build-gpu-tests/ (bash bench/device/build-gpu-tests.sh, then pack it)"
fi
echo "== $(date -u +%T) ssl-inv selftest (the device against the CPU, what users run)"
if [[ -z ${SKIP_SELFTEST:-} ]]; then
  timeout "$(cap 60)" node build-bench/bench/device/selftest.js --device cuda:0 --out "$OUT/selftest.json" > "$OUT/selftest.log" 2>&1
  echo "selftest exit status $?"; grep -v "^ok" "$OUT/selftest.log" | tail -12
else
  echo "selftest skipped (SKIP_SELFTEST)"
fi
if [[ -z ${PARITY_ONLY:-} ]]; then
  if [[ -z ${TIMING_ONLY:-} ]]; then
    echo "== $(date -u +%T) torch parity references"
    timeout "$(cap 120)" python3 bench/device/torch_parity.py /tmp/ssl-inv-parity > "$OUT/torch-parity.log" 2>&1 || echo "torch_parity.py failed (see torch-parity.log)"
  fi
  echo "== $(date -u +%T) PyTorch baselines"
  timeout "$(cap 180)" python3 bench/device/torch_baseline.py "$OUT/torch.json" ${QUICK:+--quick} ${SKIP_TRAIN:+--no-train} > "$OUT/torch-baseline.log" 2>&1 || echo "torch_baseline.py failed (see torch-baseline.log)"
  CHECK_ARGS=(--torch "$OUT/torch.json" --torch-parity /tmp/ssl-inv-parity)
  [[ -n ${TIMING_ONLY:-} ]] && CHECK_ARGS=(--torch "$OUT/torch.json" --timing-only)
else
  echo "== $(date -u +%T) PyTorch references and all timings left out (PARITY_ONLY)"
  CHECK_ARGS=(--parity-only)
fi
if [[ -z ${SKIP_CHECK:-} || -z ${SKIP_TUNE:-} ]]; then
  # The sm_90a wgmma kernel's first runs, in a process of their own: if it faults, everything after
  # it in the same process would fail, so the rest of the run leaves it out (SSL_INV_SKIP_WGMMA).
  echo "== $(date -u +%T) wgmma smoke test"
  if [[ -n ${SSL_INV_SKIP_WGMMA:-} ]]; then
    echo "skipped (SSL_INV_SKIP_WGMMA)"
  else
    timeout "$(cap 60)" node build-bench/bench/device/wgmma-smoke.js --device cuda:0 > "$OUT/wgmma-smoke.log" 2>&1
    status=$?
    echo "wgmma smoke exit status $status"; tail -8 "$OUT/wgmma-smoke.log"
    if ((status != 0)); then export SSL_INV_SKIP_WGMMA=1; echo "the wgmma kernel is left out of the rest of this run"; fi
  fi
fi
if [[ -z ${SKIP_CHECK:-} ]]; then
  echo "== $(date -u +%T) ssl-inv check"
  timeout "$(cap 270)" node build-bench/bench/device/check.js --device cuda:0 "${CHECK_ARGS[@]}" \
    --out "$OUT/$STAMP-$CARD.json" ${QUICK:+--quick} > "$OUT/check.log" 2> "$OUT/check.err"
  echo "check exit status $?"
  grep -E "^not ok" "$OUT/check.log" | head -40
  tail -20 "$OUT/check.log"
else
  echo "== $(date -u +%T) ssl-inv check skipped (SKIP_CHECK)"
fi
echo "== $(date -u +%T) training: parity against PyTorch's fixtures, then ResNet-50 and MoCo v2 steps beside PyTorch's"
if [[ -z ${SKIP_TRAIN:-} ]]; then
  TRAIN_ARGS=(); [[ -n ${PARITY_ONLY:-} ]] && TRAIN_ARGS=(--parity-only); [[ -f $OUT/torch.json ]] && TRAIN_ARGS+=(--torch "$OUT/torch.json")
  timeout "$(cap 150)" node build-bench/bench/device/train-check.js --device cuda:0 "${TRAIN_ARGS[@]}" \
    --out "$OUT/$STAMP-$CARD-train.json" > "$OUT/train-check.log" 2> "$OUT/train-check.err"
  echo "train-check exit status $?"; grep -E "^not ok" "$OUT/train-check.log" | head -20; tail -6 "$OUT/train-check.err"; cat "$OUT/train-check.log" | grep "^|"
else
  echo "training skipped (SKIP_TRAIN)"
fi
echo "== $(date -u +%T) pre-training end to end: ssl-inv pretrain's path against main_moco.py's loop (DataLoader workers) on the same photos"
if [[ -z ${SKIP_PRETRAIN:-} && -z ${SKIP_TRAIN:-} && -z ${PARITY_ONLY:-} ]]; then
  timeout "$(cap 150)" node build-bench/bench/device/pretrain-bench.js --device cuda:0 --out "$OUT/$STAMP-$CARD-pretrain.json" \
    > "$OUT/pretrain-bench.log" 2> "$OUT/pretrain-bench.err"
  echo "pretrain-bench exit status $?"; cat "$OUT/pretrain-bench.log"; grep -v "^ours: epoch" "$OUT/pretrain-bench.err" | tail -6
else
  echo "pre-training skipped (SKIP_PRETRAIN, SKIP_TRAIN or PARITY_ONLY)"
fi
echo "== $(date -u +%T) probes on the GPU: a small search beside our CPU and scikit-learn, then the CIFAR-10-sized one"
if [[ -z ${SKIP_PROBE:-} ]]; then
  timeout "$(cap 120)" node build-bench/bench/probe.js --device cuda:0 --also-cpu --threads 16 --rows 2000 --test 500 --dim 128 --modes chain,none \
    --out "$OUT/probe-parity.json" > "$OUT/probe-parity.log" 2>&1
  echo "probe parity exit status $?"; tail -4 "$OUT/probe-parity.log"
  timeout "$(cap ${PROBE_TIMEOUT:-300})" node build-bench/bench/probe.js --device cuda:0 --no-sklearn --threads 16 --rows 50000 --test 10000 --dim 2048 \
    --modes chain --out "$OUT/probe-cifar.json" > "$OUT/probe-cifar.log" 2>&1
  echo "probe CIFAR-sized exit status $?"; tail -3 "$OUT/probe-cifar.log"
else
  echo "probes skipped (SKIP_PROBE)"
fi
echo "== $(date -u +%T) the 18-transform suite: ours against the original's pipeline on this machine"
if [[ -z ${SKIP_SUITE:-} ]]; then
  timeout "$(cap ${SUITE_TIMEOUT:-300})" node build-bench/bench/device/suite.js --device cuda:0 --images 32 --py-images 1 --precision fp32,tf32 \
    --out "$OUT/suite.json" > "$OUT/suite.log" 2> "$OUT/suite.err"
  echo "suite exit status $?"; tail -23 "$OUT/suite.log"
else
  echo "suite skipped (SKIP_SUITE)"
fi
echo "== $(date -u +%T) the CLI with its default device"
if [[ -z ${SKIP_CLI:-} ]]; then
  timeout "$(cap 150)" node build-bench/bench/device/cli-default.js --out "$OUT/cli-default.json" > "$OUT/cli-default.log" 2> "$OUT/cli-default.err"
  echo "cli-default exit status $?"; grep -E "^not ok|^# cli-default|demo with" "$OUT/cli-default.log" | head -20
else
  echo "cli-default skipped (SKIP_CLI)"
fi
echo "== $(date -u +%T) fp32 convolution kernel variants"
if [[ -z ${SKIP_TUNE:-} ]]; then
  TORCH_ARGS=(); [[ -f $OUT/torch.json ]] && TORCH_ARGS=(--torch "$OUT/torch.json")
  timeout "$(cap 180)" node build-bench/bench/device/conv-tune.js --device cuda:0 "${TORCH_ARGS[@]}" --out "$OUT/conv-tune.json" > "$OUT/conv-tune.log" 2> "$OUT/conv-tune.err"
  echo "conv-tune exit status $?"; tail -30 "$OUT/conv-tune.log"
  if [[ -n ${NCU:-} ]] && command -v ncu > /dev/null; then
    # Shape 4 (256 -> 64, 1x1, 56 x 56) runs the BN = 64 kernels. Launch order of each variant's
    # kernel: the bit checks at batch 2 first (bk8's kernel three times: fp32 auto twice and simt-bk8;
    # bk16's once), then the timed calls at batch 256; the skips below land on the first timed call.
    for v in "8:3" "16:1"; do
      timeout "$(cap 90)" ncu --kernel-name-base mangled --kernel-name "regex:ConvFwdSimtKernelILi64ELi${v%%:*}E" --launch-skip "${v##*:}" --launch-count 1 \
        --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy --section LaunchStats \
        node build-bench/bench/device/conv-tune.js --device cuda:0 --shapes 4 --no-net --no-bf16 --iters 1 --out /tmp/ncu-tune.json \
        > "$OUT/ncu-bk${v%%:*}.txt" 2>&1
      echo "ncu bk${v%%:*} exit status $?"; grep -E "Duration|DRAM Throughput|Memory Throughput|Compute \(SM\)|Achieved Occupancy|Registers Per" "$OUT/ncu-bk${v%%:*}.txt" | head -8
    done
  fi
else
  echo "conv-tune skipped (SKIP_TUNE)"
fi
echo "== $(date -u +%T) compute-sanitizer memcheck (parity, small sizes)"
if [[ -n ${SKIP_MEMCHECK:-} ]]; then
  echo "memcheck skipped (SKIP_MEMCHECK)"
elif command -v compute-sanitizer > /dev/null; then
  timeout "$(cap 150)" compute-sanitizer --tool memcheck --leak-check no --print-limit 20 \
    node build-bench/bench/device/check.js --device cuda:0 --parity-only --quick --out "$OUT/memcheck-check.json" \
    > "$OUT/memcheck.log" 2>&1
  echo "memcheck exit status $?"
  grep -E "ERROR SUMMARY|Invalid|out of bounds" "$OUT/memcheck.log" | head -20
  if [[ -z ${SKIP_TRAIN:-} ]]; then
    # The training kernels (backward, batch-norm training, SGD, MoCo ranks) on the parity fixtures.
    timeout "$(cap 150)" compute-sanitizer --tool memcheck --leak-check no --print-limit 20 \
      node build-bench/bench/device/train-check.js --device cuda:0 --parity-only --out "$OUT/memcheck-train.json" \
      > "$OUT/memcheck-train.log" 2>&1
    echo "memcheck (training) exit status $?"
    grep -E "ERROR SUMMARY|Invalid|out of bounds" "$OUT/memcheck-train.log" | head -20
  fi
else
  echo "compute-sanitizer not found"
fi
echo "== $(date -u +%T) done"
