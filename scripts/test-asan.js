#!/usr/bin/env node
// `npm run test:asan [-- test files or folders]`: the native code under AddressSanitizer and UBSan.
// Builds the emulated-device addon with the sanitizers (SSL_INV_CUDA_EMU=1 SSL_INV_SANITIZE=1
// scripts/build-native.js -> build-emu-asan/), then runs tap with it loaded (SSL_INV_ADDON) and the
// sanitizer runtimes preloaded into the uninstrumented node. So every CPU kernel, and every CUDA
// kernel as the emulator runs it, is checked on the suite's cases for reads and writes out of bounds,
// use after free and undefined behaviour (signed overflow, bad shifts, misaligned access). It
// checks the kernels' index logic, not the GPU: compute-sanitizer on a real device does that
// (bench/device/run.sh). Leak checking is off (node itself is not instrumented). Allocations past
// ASan's maximum return null instead of aborting, so the out-of-memory tests reach their error path.
// Default files: the ops, the training ops, the networks, linalg, the transforms and the probes'
// device path; about 15 minutes on 2 cores.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const DEFAULT = ['test/ops', 'test/backward', 'test/models', 'test/linalg', 'test/train', 'test/transforms', 'test/probes/device.test.ts'];

const lib = (name) => {
  const r = spawnSync(process.env.CXX || 'c++', [`-print-file-name=${name}`], { encoding: 'utf8' });
  const p = (r.stdout || '').trim();
  return r.status === 0 && path.isAbsolute(p) ? p : undefined;
};
const asan = lib('libasan.so'), ubsan = lib('libubsan.so');
if (!asan || !ubsan) {
  console.error('test:asan needs a GCC or Clang with libasan and libubsan (set CXX)');
  process.exit(2);
}
const env = { ...process.env, SSL_INV_CUDA_EMU: '1', SSL_INV_SANITIZE: '1' };
const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.js')], { cwd: root, stdio: 'inherit', env });
if (r.status !== 0) process.exit(r.status ?? 1);
const files = process.argv.slice(2);
// tap runs in its own process group, asynchronously, so that a SIGINT, SIGTERM or SIGHUP sent to
// this script alone (a CI runner's timeout, `kill PID`) stops tap and its test processes too; with
// spawnSync they ran on after the script was gone. A test process inside a long native call cannot
// run its signal handler until the call returns (minutes under ASan), so the group is killed after
// a 10 s grace.
const child = spawn(process.execPath, [path.join(root, 'node_modules', 'tap', 'dist', 'esm', 'run.mjs'), '--timeout=3600', ...(files.length ? files : DEFAULT)], {
  cwd: root, stdio: 'inherit', detached: true,
  env: {
    ...process.env,
    SSL_INV_ADDON: path.join(root, 'build-emu-asan', 'Release', 'ssl_inv.node'),
    LD_PRELOAD: [asan, ubsan, process.env.LD_PRELOAD].filter(Boolean).join(':'),
    ASAN_OPTIONS: 'detect_leaks=0:allocator_may_return_null=1', UBSAN_OPTIONS: 'print_stacktrace=1',
  },
});
const signalGroup = (sig) => {
  try {
    process.kill(-child.pid, sig);
  } catch {
    // The group is gone already.
  }
};
let grace;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    signalGroup(sig);
    grace ??= setTimeout(() => signalGroup('SIGKILL'), 10_000);
  });
}
child.on('exit', (code, signal) => {
  if (grace) {
    // Interrupted: whatever tap left behind in its group goes too.
    clearTimeout(grace);
    signalGroup('SIGKILL');
  }
  process.exitCode = code ?? (signal ? 128 + (require('node:os').constants.signals[signal] ?? 0) : 1);
});
