// `ssl-inv features` end to end with --input-npy on torch-saved checkpoints, and its errors.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { convAutotune, cudaAvailable, cudaInfo } from '../../src/device';
import { readNpySync, writeNpy } from '../../src/io/npy';
import { runCli } from '../helpers/cli';
import { fixtureExpected, fixtureInput, materializeCheckpoint, MODEL_FIXTURES_DIR } from '../helpers/model-fixtures';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-features-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const x64 = path.join(MODEL_FIXTURES_DIR, 'inputs', 'x64.npy');

function relErr(a: Float32Array, b: ArrayLike<number>): number {
  let n = 0, d = 0;
  for (let i = 0; i < a.length; i++) { n += (a[i]! - b[i]!) ** 2; d += b[i]! ** 2; }
  return Math.sqrt(n / d);
}

t.test('MoCo checkpoint, arch from the checkpoint, batch smaller than N', async (t) => {
  const ckpt = await materializeCheckpoint('resnet18-moco');
  const out = path.join(dir, 'f18.npy');
  const r = await runCli(['features', '--checkpoint', ckpt, '--input-npy', x64, '--out', out, '--batch-size', '1', '--quiet']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /features\s+2 x 512 float32/);
  t.match(r.stdout, /resnet18 \(checkpoint\)/);
  const f = readNpySync(out);
  t.same(f.shape, [2, 512]);
  const ref = fixtureExpected('resnet18-moco.x64.float32.features');
  t.ok(relErr(f.data as Float32Array, ref.data) < 1e-4, 'matches PyTorch');
  t.same(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], 'no temp file left');
});

t.test('plain state dict: the architecture is inferred from the weights', async (t) => {
  const ckpt = await materializeCheckpoint('resnet50-plain');
  const out = path.join(dir, 'f50.npy');
  const r = await runCli(['features', '--checkpoint', ckpt, '--input-npy', x64, '--out', out, '--quiet']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /resnet50 \(inferred\)/);
  t.ok(relErr(readNpySync(out).data as Float32Array, fixtureExpected('resnet50-plain.x64.float32.features').data) < 1e-4);
});

t.test('errors: codes, exit status, no output file', async (t) => {
  const ckpt = await materializeCheckpoint('resnet18-plain');
  const out = path.join(dir, 'never.npy');
  let r = await runCli(['features', '--checkpoint', path.join(dir, 'missing.pth'), '--input-npy', x64, '--out', out]);
  t.equal(r.code, 1);
  t.match(r.stderr, /ERR_FILE_NOT_FOUND/);
  r = await runCli(['features', '--checkpoint', ckpt, '--out', out]);
  t.equal(r.code, 2, 'neither --data nor --input-npy');
  t.match(r.stderr, /ERR_USAGE/);
  r = await runCli(['features', '--checkpoint', ckpt, '--input-npy', x64, '--data', dir, '--out', out]);
  t.equal(r.code, 2, 'both inputs');
  r = await runCli(['features', '--checkpoint', ckpt, '--input-npy', x64, '--out', out, '--arch', 'vgg16']);
  t.equal(r.code, 2, 'unknown --arch');
  r = await runCli(['features', '--checkpoint', ckpt, '--input-npy', x64, '--out', out, '--batch-size', '0']);
  t.equal(r.code, 2, '--batch-size 0');
  // Its own output file: where it succeeds, it must not leave the file the failures below must not write.
  const outCuda = path.join(dir, 'features-cuda.npy');
  r = await runCli(['features', '--checkpoint', ckpt, '--input-npy', x64, '--out', outCuda, '--device', 'cuda']);
  if (cudaAvailable()) {
    t.equal(r.code, 0, '--device cuda runs where there is a GPU');
    fs.rmSync(outCuda, { force: true });
  } else {
    t.equal(r.code, 1, '--device cuda without a usable GPU');
    t.match(r.stderr, /ERR_DEVICE_UNAVAILABLE/);
  }
  r = await runCli(['features', '--checkpoint', ckpt, '--input-npy', x64, '--out', out, '--device', 'gpu']);
  t.equal(r.code, 2, '--device gpu is a usage error');
  r = await runCli(['features', '--checkpoint', ckpt, '--input-npy', x64, '--out', out, '--arch', 'resnet50']);
  t.equal(r.code, 1, 'a resnet18 state dict read as resnet50');
  t.match(r.stderr, /ERR_CHECKPOINT_KEYS/);
  t.match(r.stderr, /missing key/);
  t.match(r.stderr, /shape mismatch/);
  const bad = path.join(dir, 'bad-input.npy');
  await writeNpy(bad, { dtype: 'float32', shape: [2, 4, 8, 8], data: new Float32Array(2 * 4 * 64) });
  r = await runCli(['features', '--checkpoint', ckpt, '--input-npy', bad, '--out', out]);
  t.equal(r.code, 1);
  t.match(r.stderr, /ERR_SHAPE_MISMATCH.*\[N, 3, H, W\]/);
  const f64 = path.join(dir, 'f64-input.npy');
  await writeNpy(f64, { dtype: 'float64', shape: [1, 3, 8, 8], data: new Float64Array(192) });
  r = await runCli(['features', '--checkpoint', ckpt, '--input-npy', f64, '--out', out]);
  t.match(r.stderr, /ERR_DTYPE_MISMATCH/);
  t.notOk(fs.existsSync(out), 'no output written by a failed run');
});

t.test('--precision and --activations', async (t) => {
  const ckpt = await materializeCheckpoint('resnet18-moco');
  const out = path.join(dir, 'never-arith.npy');
  const base = ['features', '--checkpoint', ckpt, '--input-npy', x64, '--quiet'];
  let r = await runCli([...base, '--out', out, '--device', 'cpu', '--precision', 'tf32']);
  t.equal(r.code, 1, 'tf32 on the CPU');
  t.match(r.stderr, /ERR_DEVICE_UNAVAILABLE: --precision tf32 needs a CUDA device/);
  r = await runCli([...base, '--out', out, '--device', 'cpu', '--precision', 'fp16']);
  t.equal(r.code, 2, 'an unknown precision');
  t.match(r.stderr, /ERR_USAGE: --precision takes fp32, tf32 or bf16, got 'fp16'/);
  r = await runCli([...base, '--out', out, '--device', 'cpu', '--activations', 'bfloat16']);
  t.equal(r.code, 2, 'bfloat16 activations with fp32 convolutions');
  t.match(r.stderr, /ERR_USAGE: --activations bfloat16 needs --precision bf16/);
  r = await runCli([...base, '--out', out, '--device', 'cpu', '--activations', 'float16']);
  t.equal(r.code, 2, 'an unknown storage');
  t.match(r.stderr, /ERR_USAGE: option '--activations <storage>' argument 'float16' is invalid/);
  t.notOk(fs.existsSync(out), 'no output written by a refused run');
  r = await runCli([...base, '--out', path.join(dir, 'f18-fp32.npy'), '--device', 'cpu', '--precision', 'fp32', '--activations', 'float32']);
  t.equal(r.code, 0, 'the defaults, spelt out');
  t.match(r.stdout, /device\s+cpu, fp32\n/);

  // Each arithmetic on a CUDA device (a GPU, or the emulated device of test/cuda-emu/addon-emu.test.ts)
  // against PyTorch's float32 features, within the whole-network bounds of resnet-device.test.ts.
  t.test('on a CUDA device', { skip: cudaAvailable() ? false : 'no CUDA device' }, async (t) => {
    const ref = fixtureExpected('resnet18-moco.x64.float32.features').data;
    for (const c of [
      { args: ['--precision', 'tf32'], line: /device\s+cuda:0, tf32\n/, limit: 2e-3 * 4 },
      { args: ['--precision', 'bf16'], line: /device\s+cuda:0, bf16\n/, limit: 1.5e-2 * 4 },
      { args: ['--precision', 'bf16', '--activations', 'bfloat16'], line: /device\s+cuda:0, bf16, bfloat16 activations\n/, limit: 1.5e-2 * 4 },
    ]) {
      const o = path.join(dir, `f18-${c.args.join('')}.npy`);
      const run = await runCli([...base, '--out', o, '--device', 'cuda:0', ...c.args]);
      t.equal(run.code, 0, `${c.args.join(' ')}: ${run.stderr}`);
      t.match(run.stdout, c.line, 'the table names the arithmetic');
      const e = relErr(readNpySync(o).data as Float32Array, ref);
      t.ok(e < c.limit, `${c.args.join(' ')} vs PyTorch float32: ${e.toExponential(2)} (limit ${c.limit})`);
    }
  });
});

t.test('info and help', async (t) => {
  let r = await runCli(['info', '--json']);
  t.equal(r.code, 0);
  const info = JSON.parse(r.stdout) as { backends: string[]; threads: number; version: string; defaultDevice: string };
  t.ok(info.backends.includes('cpu'));
  t.ok(info.threads >= 1);
  t.equal(info.defaultDevice, process.env.SSL_INV_DEVICE ? info.defaultDevice : cudaAvailable() ? 'cuda:0' : 'cpu', 'what --device auto picks');
  const tuning = (info as { convTuning?: string }).convTuning;
  if (cudaInfo().compiled) t.match(tuning, convAutotune() ? /^on: / : /^off: /, "says whether 'auto' convolutions are tuned at run time");
  else t.equal(tuning, undefined, 'no CUDA backend: no tuning line');
  if (cudaInfo().compiled) {
    const was = convAutotune(false);
    r = await runCli(['info']);
    convAutotune(was);
    t.match(r.stdout, /convTuning\s+off: the default kernels/, 'switched off, it says so');
  }
  r = await runCli(['features', '--help']);
  t.match(r.stdout.replace(/\s+/g, ' '), /--device <device> cpu, cuda, cuda:N or auto \(SSL_INV_DEVICE if set, else the first usable GPU, else cpu\)/, 'the help says what auto is');
  t.match(r.stdout, /default: "auto"/);
  r = await runCli(['features', '--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /--input-npy/);
  r = await runCli(['--help']);
  t.match(r.stdout, /features/);
  t.match(r.stdout, /info/);
});

t.test('input fixture sanity', async (t) => {
  t.same(fixtureInput('x64').shape, [2, 3, 64, 64]);
});
