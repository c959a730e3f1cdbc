// `ssl-inv views`: the views of one image as .npy in the original's grid order, and a contact sheet.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { decodeImageFile } from '../../src/data/decode';
import { imagenetEvalTransform, preprocess } from '../../src/data/preprocess';
import { readNpySync } from '../../src/io/npy';
import { cudaAvailable } from '../../src/device';
import { runCli } from '../helpers/cli';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-views-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const image = path.join(__dirname, '..', 'fixtures', 'images', 'inputs', 'china_333x251_420.jpg');

t.test('rotation views and sheet', async (t) => {
  const out = path.join(dir, 'v.npy'), sheet = path.join(dir, 's.png');
  const r = await runCli(['views', '--transform', 'rotation', '--k', '4', '--resize', '64', '--crop-size', '56', image, '--out', out, '--sheet', sheet]);
  t.equal(r.code, 0, r.stderr);
  const v = readNpySync(out);
  t.same(v.shape, [4, 3, 56, 56]);
  const clean = preprocess(await decodeImageFile(image), imagenetEvalTransform(64, 56));
  t.same(Array.from((v.data as Float32Array).subarray(0, clean.length)), Array.from(clean), 'view 0 (0 degrees) is the clean image');
  t.notSame(Array.from((v.data as Float32Array).subarray(clean.length, 2 * clean.length)), Array.from(clean), 'view 1 is rotated');
  const meta = await sharp(fs.readFileSync(sheet)).metadata();
  t.same([meta.width, meta.height, meta.format], [2 * 56 + 3 * 2, 2 * 56 + 3 * 2, 'png']);
});

t.test('--device cuda builds the same views on the GPU, or says why it cannot', async (t) => {
  const cpuOut = path.join(dir, 'c.npy'), gpuOut = path.join(dir, 'g.npy');
  const args = ['views', '--transform', 'hue', '--k', '16', '--resize', '64', '--crop-size', '56', image];
  t.equal((await runCli([...args, '--out', cpuOut, '--device', 'cpu'])).code, 0);
  const r = await runCli([...args, '--out', gpuOut, '--device', 'cuda']);
  if (cudaAvailable()) {
    t.equal(r.code, 0, r.stderr);
    t.same(Array.from(readNpySync(gpuOut).data as Float32Array), Array.from(readNpySync(cpuOut).data as Float32Array), 'bit for bit');
  } else {
    t.equal(r.code, 1);
    t.match(r.stderr, /ERR_DEVICE_UNAVAILABLE/);
    t.notOk(fs.existsSync(gpuOut), 'nothing written');
  }
});

t.test('--device defaults to auto: a GPU when there is one (and says so), else the CPU', async (t) => {
  const out = path.join(dir, 'auto.npy');
  const args = ['views', '--transform', 'v_flip', '--resize', '64', '--crop-size', '56', image, '--out', out];
  const saved = process.env.SSL_INV_DEVICE;
  t.teardown(() => { if (saved === undefined) delete process.env.SSL_INV_DEVICE; else process.env.SSL_INV_DEVICE = saved; });
  delete process.env.SSL_INV_DEVICE;
  let r = await runCli(args);
  t.equal(r.code, 0, r.stderr);
  if (cudaAvailable()) t.match(r.stderr, /device cuda:0 \(.*a GPU is present\); --device cpu computes on the CPU/, 'names the GPU it picked');
  else t.notMatch(r.stderr, /device/, 'on the CPU: nothing to announce');
  process.env.SSL_INV_DEVICE = 'gpu0';
  fs.rmSync(out, { force: true });
  r = await runCli(args);
  t.equal(r.code, 1);
  t.match(r.stderr, /ERR_INVALID_ARGUMENT: SSL_INV_DEVICE: expected cpu, cuda, cuda:N or auto, got 'gpu0'/, 'a bad SSL_INV_DEVICE names the variable');
  t.notOk(fs.existsSync(out), 'nothing written');
  r = await runCli([...args, '--device', 'cpu']);
  t.equal(r.code, 0, '--device cpu does not read the variable');
  r = await runCli([...args, '--device', 'tpu']);
  t.equal(r.code, 2);
  t.match(r.stderr, /ERR_USAGE: --device takes cpu, cuda, cuda:N or auto, got 'tpu'/);
});

t.test('errors', async (t) => {
  let r = await runCli(['views', '--transform', 'spin', image, '--out', path.join(dir, 'x.npy')]);
  t.equal(r.code, 2);
  r = await runCli(['views', '--transform', 'shear', '--k', '10', image, '--out', path.join(dir, 'x.npy')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /ERR_INVALID_ARGUMENT.*square/);
  r = await runCli(['views', '--transform', 'h_flip', path.join(dir, 'missing.jpg'), '--out', path.join(dir, 'x.npy')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /ERR_FILE_NOT_FOUND|ERR_FILE_READ/);
  t.notOk(fs.existsSync(path.join(dir, 'x.npy')));
});
