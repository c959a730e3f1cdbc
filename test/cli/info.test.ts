// `ssl-inv info FILE`: what a checkpoint holds (container, the trunk the evaluators load and how its
// architecture was found, main_moco.py's MoCo parts, the run settings pre-training records, whether
// every trunk value is finite), as a table or JSON; the loaders' coded errors for files they refuse;
// and `ssl-inv ... | head` ends quietly.
import t from 'tap';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { torchSave } from '../../src/io/torch-save';
import { torchvisionInitStateDict } from '../../src/nn/torchvision-init';
import { SGD } from '../../src/optim/sgd';
import { MocoV2 } from '../../src/train/moco';
import { freshMocoInit } from '../../src/train/moco-init';
import { saveMocoCheckpoint } from '../../src/train/moco-checkpoint';
import { runCli } from '../helpers/cli';
import { materializeCheckpoint } from '../helpers/model-fixtures';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-info-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

async function info(file: string): Promise<Record<string, unknown>> {
  const r = await runCli(['info', file, '--json']);
  if (r.code !== 0) throw new Error(`info exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

t.test("main_moco.py's checkpoint (the torch.save'd fixture) and a torchvision state dict", async (t) => {
  const moco = await materializeCheckpoint('resnet18-moco');
  const a = await info(moco);
  t.match(a, {
    file: moco, bytes: fs.statSync(moco).size, container: /^zip \(torch\.save format version \d+, little endian\)$/,
    kind: 'moco', arch: 'resnet18', archSource: 'checkpoint', prefix: 'module.encoder_q.', epoch: 200,
    trunkTensors: 100, trunkParameters: 11_186_112, loads: 'ok', finite: 'yes',
    moco: { dim: 128, K: 256, head: 'mlp' },
  });
  t.equal(a.sha256, createHash('sha256').update(fs.readFileSync(moco)).digest('hex'), "the file's SHA-256");
  t.notOk('run' in a, 'main_moco.py records no run settings');
  const plain = await materializeCheckpoint('resnet18-plain');
  const b = await info(plain);
  t.match(b, { kind: 'state_dict', arch: 'resnet18', archSource: 'inferred', loads: 'ok', finite: 'yes', trunkTensors: 100 });
  t.notOk('moco' in b, 'no MoCo parts');
  const table = await runCli(['info', plain]);
  t.equal(table.code, 0);
  t.match(table.stdout, new RegExp(`^file +${plain.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n(.*\n)*archSource +inferred\n(.*\n)*finite +yes\n$`), 'a table, one line per field');
});

t.test('a pre-training checkpoint: the run settings it records', async (t) => {
  const m = await MocoV2.create({ arch: 'resnet18', dim: 8, K: 16, m: 0.999, T: 0.2, mlp: false }, freshMocoInit('resnet18', 8, 16, false, 0));
  const sgd = new SGD({ lr: 0.03, momentum: 0.9 });
  const file = path.join(dir, 'default_0000.pth.tar');
  try {
    await saveMocoCheckpoint(file, m, sgd, 1, { seed: 7, model: 'ventral', batchSize: 4, bnSplits: 2, imageSize: 32, images: 9, filesSha256: 'ab'.repeat(32) });
  } finally {
    m.dispose();
    sgd.dispose();
  }
  const a = await info(file);
  t.match(a, { kind: 'moco', epoch: 1, moco: { dim: 8, K: 16, queuePtr: 0, head: 'linear', momentumBuffers: 0 } });
  t.same(a.run, { format: 1, seed: 7, model: 'ventral', batch_size: 4, bn_splits: 2, image_size: 32, images: 9, files_sha256: 'ab'.repeat(32) });
});

t.test('what the evaluators would refuse is said, not hidden', async (t) => {
  const nan = torchvisionInitStateDict('resnet18', 1);
  (nan.get('layer3.1.conv2.weight')!.data as Float32Array)[5] = NaN;
  await torchSave(path.join(dir, 'nan.pth'), nan);
  t.match(await info(path.join(dir, 'nan.pth')), { loads: 'ok', finite: 'no: layer3.1.conv2.weight holds NaN at index 5' });
  const short = torchvisionInitStateDict('resnet18', 1);
  short.delete('layer4.1.bn2.running_var');
  await torchSave(path.join(dir, 'short.pth'), short);
  t.match(await info(path.join(dir, 'short.pth')), { loads: /state dict does not match the model: 1 missing key: layer4\.1\.bn2\.running_var/ });
});

t.test('files the loaders refuse: their coded errors, exit 1', async (t) => {
  const missing = await runCli(['info', path.join(dir, 'nope.pth')]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /ERR_FILE_NOT_FOUND: .*nope\.pth/);
  const whole = fs.readFileSync(await materializeCheckpoint('resnet18-plain'));
  fs.writeFileSync(path.join(dir, 'cut.pth'), whole.subarray(0, whole.length >> 1));
  const cut = await runCli(['info', path.join(dir, 'cut.pth')]);
  t.equal(cut.code, 1);
  t.match(cut.stderr, /ERR_CHECKPOINT_CORRUPT: .*cut\.pth/);
  t.equal(cut.stdout, '', 'no partial table');
});

const bin = path.join(__dirname, '..', '..', 'bin', 'ssl-inv.js');
t.test('output cut short by the reader (| head): a quiet exit 0', {
  skip: fs.existsSync(path.join(__dirname, '..', '..', 'lib', 'cli', 'main.js')) ? false : 'lib/ not built (npm test builds it)',
}, async (t) => {
  const r = spawnSync('sh', ['-c', `"${process.execPath}" "${bin}" info | head -1`], { encoding: 'utf8', timeout: 60_000 });
  t.match(r.stdout, /^version +\d/, 'the first line arrives');
  t.notMatch(r.stderr, /EPIPE|Unhandled|at /, 'no error or stack trace');
  const direct = spawnSync('sh', ['-c', `"${process.execPath}" "${bin}" info | head -1 > /dev/null; echo done`], { encoding: 'utf8', timeout: 60_000 });
  t.equal(direct.stdout.trim(), 'done');
});

t.test('without a checkpoint: the backends, the CUDA architectures built for, the devices', async (t) => {
  const { cudaInfo } = await import('../../src/device');
  const r = await runCli(['info', '--json']);
  t.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  const cuda = cudaInfo();
  t.same(info.backends, cuda.compiled ? ['cpu', 'cuda'] : ['cpu']);
  if (cuda.compiled) t.equal(info.cudaArchitectures, cuda.architectures, `built for ${cuda.architectures}`);
  else t.notOk('cudaArchitectures' in info);
  t.equal(info.devices.length, 1 + cuda.deviceCount);
  if (!cuda.devices.some((d) => d.usable) && cuda.compiled) t.match(info.cuda, /^no usable device: /);
});
