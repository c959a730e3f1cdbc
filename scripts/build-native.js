#!/usr/bin/env node
// Builds the native addon into build/Release/ssl_inv.node.
// With cmake on the PATH: cmake-js (CMakeLists.txt), which also compiles the CUDA backend when nvcc is
// found. Without cmake: node-gyp (binding.gyp), CPU backend only. Both read native/sources.json.
// Environment: SSL_INV_CUDA=0 builds without CUDA; SSL_INV_CUDA_ARCHS sets the CUDA architectures
// (CMake's names, e.g. "80-real,90-real,90-virtual", the default; CMakeLists.txt); SSL_INV_BUILD_JOBS sets the parallel job count;
// SSL_INV_CUDA_EMU=1 builds the emulated-device test addon into build-emu/Release/ssl_inv.node instead
// (CUDA sources as host C++ against native/cuda/emu; load it with SSL_INV_ADDON). With
// SSL_INV_SANITIZE=1 as well, into build-emu-asan/ with AddressSanitizer and UBSan (scripts/test-asan.js).
'use strict';
const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const jobs = process.env.SSL_INV_BUILD_JOBS || String(Math.max(1, os.availableParallelism?.() ?? os.cpus().length));

function has(cmd) {
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore' });
  return r.status === 0;
}

function run(cmd, args) {
  console.error(`ssl-invariances: ${path.basename(cmd)} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

let status;
if (has('cmake')) {
  const args = [require.resolve('cmake-js/bin/cmake-js'), 'compile', '--parallel', jobs, '--log-level', 'warn'];
  if (process.env.SSL_INV_CUDA === '0') args.push('--CDSSL_INV_CUDA=OFF');
  // CUDA architectures, as CMake names them ("80-real,86-real,90-virtual"; commas or semicolons).
  const archs = process.env.SSL_INV_CUDA_ARCHS?.trim();
  if (archs) args.push(`--CDCMAKE_CUDA_ARCHITECTURES=${archs.split(/[,;\s]+/).filter(Boolean).join(';')}`);
  const sanitize = process.env.SSL_INV_SANITIZE === '1';
  if (process.env.SSL_INV_CUDA_EMU === '1') args.push('--CDSSL_INV_CUDA_EMU=ON', '--out', sanitize ? 'build-emu-asan' : 'build-emu');
  else if (sanitize) args.push('--out', 'build-asan');
  if (sanitize) args.push('--CDSSL_INV_SANITIZE=ON');  // AddressSanitizer + UBSan (CMakeLists.txt)
  status = run(process.execPath, args);
} else {
  console.error('ssl-invariances: cmake not found; building the CPU backend with node-gyp');
  const gyp = process.env.npm_config_node_gyp;
  status = gyp ? run(process.execPath, [gyp, 'rebuild', '-j', jobs]) : run('node-gyp', ['rebuild', '-j', jobs]);
}
if (status !== 0) {
  console.error('ssl-invariances: the native build failed (see above). It needs a C++17 compiler and cmake >= 3.19 ' +
    '(or node-gyp\'s toolchain: python3, make).');
  process.exit(status);
}
