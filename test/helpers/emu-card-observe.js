// Prints, as one JSON line, what the addon in SSL_INV_ADDON says and does about its CUDA device: run
// by test/cuda-emu/addon-emu.test.ts with the emulated-device addon posing as other cards
// (SSL_INV_CUDA_EMU_CC, SSL_INV_CUDA_EMU_NO_KERNEL_IMAGE). Each attempt is recorded as the device or
// result it gave, or the error's code and message; the process must survive them all.
'use strict';
const { cudaInfo, resolveDevice, toDevice } = require('../../lib/device');
const { tensor } = require('../../lib/tensor');
const ops = require('../../lib/ops');
const { native } = require('../../lib/native');

function attempt(f) {
  try {
    return { ok: f() };
  } catch (e) {
    return { code: e.code, message: e.message };
  }
}

const moco = (dim) => attempt(() => {
  const n = 4, k = 32;
  const q = toDevice(tensor(new Float32Array(n * dim).fill(0.1), [n, dim]), 'cuda:0');
  const kp = toDevice(tensor(new Float32Array(n * dim).fill(0.1), [n, dim]), 'cuda:0');
  const queue = toDevice(tensor(new Float32Array(dim * k).fill(0.05), [dim, k]), 'cuda:0');
  return ops.mocoLoss(q, kp, queue, 0.2).loss.toFloat32Array()[0];
});

const x = tensor(new Float32Array([1, 2, 3, 4]), [4]);
const out = {
  info: cudaInfo(),
  auto: attempt(() => resolveDevice('auto')),
  explicit: attempt(() => resolveDevice('cuda')),
  move: attempt(() => Array.from(toDevice(x, 'cuda:0').to('cpu').toFloat32Array())),
  moveAgain: attempt(() => Array.from(toDevice(x, 'cuda:0').to('cpu').toFloat32Array())),
  // The addon itself, past resolveDevice's check: the native layer must refuse on its own.
  moveNative: attempt(() => native().toDevice(x.handle, 'cuda:0') !== undefined),
};
if (out.move.ok) Object.assign(out, { moco128: moco(128), moco200: moco(200) });
process.stdout.write(`${JSON.stringify(out)}\n`);
