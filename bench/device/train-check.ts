/**
 * Training on the GPU, for the device run (bench/device/run.sh): parity against PyTorch, then our
 * training steps timed beside PyTorch's from the same run.
 *
 *   node build-bench/bench/device/train-check.js [--device cuda:0] [--torch torch.json] [--batch 64]
 *        [--parity-only] [--out FILE]
 *
 * 1. Parity, run with mini-tap: the training ops one by one against the CPU's (the tap suite's
 *    cases, test/backward/conv-device-cases.ts and layers-device-cases.ts), then the networks
 *    (test/helpers/train-device-cases.ts): ResNet-18 (3 SGD steps) and ResNet-50 (1 step) from
 *    resnet_train.json, MoCo v2 on one GPU and on two (split BN, shuffle BN) from moco_train*.json,
 *    every tensor on the device, against PyTorch's float64 numbers.
 * 2. Timing at --batch (64), 224 x 224, fp32: a ResNet-50 training step (forwardTrain, backward from a
 *    given dL/dfeatures, SGD with momentum 0.9 and weight decay 1e-4: torch_baseline.py's
 *    resnet50_train_step), and a MoCo v2 step (two ResNet-50 encoders, MLP head, K 65,536, dim 128,
 *    T 0.2, one GPU: its moco_step), each the mean of 3 steps after 1 warm-up step.
 * Writes --out (default bench/results/<date>-<card>-train.json) and prints a table of ratios against
 * torch.json's numbers when given. Exit status 1 when a parity assertion fails.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cudaInfo, synchronize } from '../../src/device';
import { TrainableResNet } from '../../src/nn/resnet-train';
import { SGD } from '../../src/optim/sgd';
import { MocoV2 } from '../../src/train/moco';
import { freshMocoInit } from '../../src/train/moco-init';
import { MiniTest } from './mini-tap';
import { onDevice, randomF32, randomParams } from './bench-util';
import { mocoTrainCase, mocoTrainFixtures, resnetTrainCase, resnetTrainFixtures } from '../../test/helpers/train-device-cases';
import { runConvBackwardDevice } from '../../test/backward/conv-device-cases';
import { runLayerBackwardDevice } from '../../test/backward/layers-device-cases';

const argv = process.argv.slice(2);
const arg = (n: string) => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : undefined; };
const DEVICE = arg('--device') ?? 'cuda:0';
const BATCH = Number(arg('--batch') ?? 64);
const log = (m: string) => process.stderr.write(`${m}\n`);

/** Milliseconds per step: one warm-up step, then `iters` steps between two synchronisations. */
function timeSteps(step: () => void, iters = 3): number {
  step();
  synchronize(DEVICE);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) step();
  synchronize(DEVICE);
  return Number(process.hrtime.bigint() - t0) / 1e6 / iters;
}

async function timeResNet50(): Promise<{ batch: number; ms: number; img_s: number }> {
  const net = await TrainableResNet.load('resnet50', randomParams('resnet50', 7), { device: DEVICE });
  const x = onDevice(DEVICE, randomF32(BATCH * 3 * 224 * 224, 8), [BATCH, 3, 224, 224]);
  const g = onDevice(DEVICE, randomF32(BATCH * 2048, 9, 2e-3), [BATCH, 2048]);
  const sgd = new SGD({ lr: 0.03, momentum: 0.9, weightDecay: 1e-4 });
  try {
    const ms = timeSteps(() => {
      const { features, tape } = net.forwardTrain(x);
      features.dispose();
      const { grads } = net.backward(tape, g);
      net.step(sgd, grads);
      for (const v of grads.values()) v.dispose();
    });
    return { batch: BATCH, ms: Math.round(ms * 100) / 100, img_s: Math.round(BATCH * 1e4 / ms) / 10 };
  } finally {
    for (const v of [x, g]) v.dispose();
    sgd.dispose();
    net.dispose();
  }
}

async function timeMoco(): Promise<{ batch: number; ms: number; img_s: number }> {
  const moco = await MocoV2.create({ arch: 'resnet50', dim: 128, K: 65536, m: 0.999, T: 0.2, mlp: true, device: DEVICE },
    freshMocoInit('resnet50', 128, 65536, true, 0));
  const imQ = onDevice(DEVICE, randomF32(BATCH * 3 * 224 * 224, 10), [BATCH, 3, 224, 224]);
  const imK = onDevice(DEVICE, randomF32(BATCH * 3 * 224 * 224, 11), [BATCH, 3, 224, 224]);
  const sgd = new SGD({ lr: 0.03, momentum: 0.9, weightDecay: 1e-4 });
  try {
    const ms = timeSteps(() => { moco.step(imQ, imK, sgd); });
    return { batch: BATCH, ms: Math.round(ms * 100) / 100, img_s: Math.round(BATCH * 1e4 / ms) / 10 };
  } finally {
    for (const v of [imQ, imK]) v.dispose();
    sgd.dispose();
    moco.dispose();
  }
}

async function main(): Promise<void> {
  const info = cudaInfo();
  const card = info.devices.find((d) => `cuda:${d.index}` === DEVICE)?.name ?? 'unknown';
  const started = Date.now();
  const t = new MiniTest(`training on ${DEVICE}`);
  // The training ops one by one against the CPU's (the tap suite's device cases), so a network that
  // fails below comes with the op that fails.
  t.test('convolution backward ops against the CPU', (t) => runConvBackwardDevice(t as never, DEVICE));
  runLayerBackwardDevice(t as never, DEVICE);
  for (const fx of resnetTrainFixtures()) t.test(`${fx.arch}: ${fx.steps} SGD step(s) against PyTorch`, (t) => resnetTrainCase(t, fx.arch, DEVICE));
  for (const fx of mocoTrainFixtures()) t.test(`MoCo v2 on ${fx.gpus} GPU(s): ${fx.steps} steps against PyTorch`, (t) => mocoTrainCase(t, fx.split, DEVICE));
  const results = await t.run();
  const failed = results.filter((r) => !r.ok);
  log(`training parity: ${results.length - failed.length} of ${results.length} assertions pass`);
  const out: Record<string, unknown> = {
    date: new Date().toISOString(), device: DEVICE, card, node: process.version,
    parity: { assertions: results.length, failed: failed.map((r) => r.name) },
  };
  if (!argv.includes('--parity-only')) {
    const torchFile = arg('--torch');
    const torch = torchFile && fs.existsSync(torchFile) ? JSON.parse(fs.readFileSync(torchFile, 'utf8')) as Record<string, { img_s?: number; batch?: number }> : undefined;
    const rows: [string, { batch: number; ms: number; img_s: number }, { img_s?: number; batch?: number } | undefined][] = [];
    for (const [key, fn] of [['resnet50_train_step', timeResNet50], ['moco_step', timeMoco]] as const) {
      try {
        const r = await fn();
        out[key] = r;
        rows.push([key, r, torch?.[key]]);
        log(`${key}: ${r.ms} ms per step of ${r.batch}, ${r.img_s} img/s`);
      } catch (e) {
        out[key] = { error: String((e as Error).stack ?? e) };
        log(`${key}: failed: ${(e as Error).message}`);
      }
    }
    if (torch) out.torch = { resnet50_train_step: torch.resnet50_train_step, moco_step: torch.moco_step };
    const lines = ['| workload (fp32, 224 x 224) | batch | ours img/s | PyTorch img/s | ours / PyTorch |', '|---|---|---|---|---|'];
    for (const [key, r, b] of rows) {
      const same = b?.img_s !== undefined && b.batch === r.batch;
      lines.push(`| ${key} | ${r.batch} | ${r.img_s} | ${b?.img_s ?? '-'} | ${same ? `${(r.img_s / b!.img_s!).toFixed(2)}x` : '-'} |`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  out.seconds = (Date.now() - started) / 1000;
  const slug = card.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/-$/, '');
  const file = arg('--out') ?? path.join('bench', 'results', `${new Date().toISOString().slice(0, 10)}-${slug}-train.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  log(`wrote ${file}`);
  if (failed.length) process.exitCode = 1;
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
