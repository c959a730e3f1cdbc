// `ssl-inv pretrain --device cuda` end to end on a tiny ImageFolder (ResNet-18, 32x32 views, batch 4,
// one step per epoch): the run on each CUDA device gives the CPU run's loss and accuracies for the
// same data, seed and flags (within the whole-network tolerance), writes the same files, and resumes
// from its own checkpoint on the device (the optimiser's momentum going back to it); the summary
// records the device. --device auto stays on the CPU and says why. On machines without a GPU this
// runs on the emulated device (test/cuda-emu/addon-emu.test.ts); skipped where no CUDA device is usable.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { cudaInfo } from '../../src/device';
import { runCli } from '../helpers/cli';
import { writeTinyImageFolder } from '../helpers/tiny-image-folder';

const info = cudaInfo();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-pretrain-device-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const data = path.join(dir, 'data');
const BASE = ['-a', 'resnet18', '-b', '4', '--moco-k', '16', '--moco-dim', '16', '--mlp', '--image-size', '32',
  '--max-steps-per-epoch', '1', '--threads', '2', '--quiet'];

/** The per-step rows of a run's log: [loss, acc1, acc5]. */
function logRows(out: string): number[][] {
  return fs.readFileSync(path.join(out, 'pretrain-log.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').slice(3, 6).map(Number));
}

if (info.deviceCount === 0) {
  t.pass(`no usable CUDA device (${info.compiled ? info.reason : 'built without the CUDA backend'}); pretrain on a device is skipped`);
} else {
  t.before(async () => {
    await writeTinyImageFolder(data, 8);
  });

  t.test('one epoch on the CPU and on the device, then a resumed epoch on the device', async (t) => {
    const cpu = path.join(dir, 'cpu'), dev = path.join(dir, 'dev');
    const rc = await runCli(['pretrain', data, ...BASE, '--epochs', '1', '--device', 'cpu', '--out-dir', cpu]);
    t.equal(rc.code, 0, 'the CPU run', { stderr: rc.stderr });
    const rd = await runCli(['pretrain', data, ...BASE, '--epochs', '1', '--gpu', '0', '--out-dir', dev]);
    t.equal(rd.code, 0, 'the device run (--gpu 0)', { stderr: rd.stderr });
    t.same(fs.readdirSync(dev).sort(), fs.readdirSync(cpu).sort(), 'the same files');
    const [a] = logRows(cpu), [b] = logRows(dev);
    t.ok(Math.abs(b![0]! - a![0]!) <= 1e-4 * Math.abs(a![0]!), `the loss as the CPU's (${b![0]} vs ${a![0]})`);
    t.same(b!.slice(1), a!.slice(1), "Acc@1 and Acc@5 as the CPU's");
    const summary = JSON.parse(fs.readFileSync(path.join(dev, 'pretrain-summary.json'), 'utf8'));
    t.equal(summary.options.device, 'cuda:0', 'the summary records the device');
    const rr = await runCli(['pretrain', data, ...BASE, '--epochs', '2', '--resume', 'latest', '--device', 'cuda', '--out-dir', dev]);
    t.equal(rr.code, 0, 'resumed on the device', { stderr: rr.stderr });
    t.equal(logRows(dev).length, 2, 'a second epoch in the log');
    t.ok(fs.existsSync(path.join(dev, 'default_0001.pth.tar')), 'and its checkpoint');
  });

  t.test('--device auto stays on the CPU and says why', async (t) => {
    // Without SSL_INV_DEVICE, which would name the device auto means.
    const envBefore = process.env.SSL_INV_DEVICE;
    delete process.env.SSL_INV_DEVICE;
    t.teardown(() => { if (envBefore !== undefined) process.env.SSL_INV_DEVICE = envBefore; });
    const r = await runCli(['pretrain', data, ...BASE.filter((f) => f !== '--quiet'), '--epochs', '1', '--out-dir', path.join(dir, 'auto')]);
    t.equal(r.code, 0, { stderr: r.stderr });
    t.match(r.stderr, /a GPU is present; pre-training stays on the CPU unless asked \(--device cuda\)/);
  });

  // The emulated device's memory can be capped (SSL_INV_CUDA_EMU_MEMORY, read once per process), so a
  // child process can run out of it: on a GPU the same path is the check's deliberate OOM.
  const emulated = info.devices[0]?.name === 'CUDA emulator (host)';
  const bin = path.join(__dirname, '..', '..', 'bin', 'ssl-inv.js');
  t.test('out of device memory, or a device fault, mid-step: a typed error, exit 1, no new checkpoint', {
    skip: !emulated ? 'needs the emulated device (its memory cap)' : !fs.existsSync(path.join(__dirname, '..', '..', 'lib', 'cli', 'main.js')) ? 'lib/ not built (npm test builds it)' : false,
  }, async (t) => {
    const out = path.join(dir, 'oom');
    // 150 MB: ResNet-18, its momentum encoder and the head fit; the step's backward does not.
    const r = spawnSync(process.execPath, [bin, 'pretrain', data, ...BASE, '--epochs', '1', '--gpu', '0', '--out-dir', out], {
      encoding: 'utf8', env: { ...process.env, SSL_INV_CUDA_EMU_MEMORY: String(150_000_000) }, timeout: 300_000,
    });
    t.equal(r.status, 1, 'exit status 1', { stderr: r.stderr });
    t.match(r.stderr, /ERR_OUT_OF_MEMORY: .*cuda:0: out of memory allocating .* \(this process holds .*\)\. Use a smaller --batch-size\. \(this run: --batch-size 4, --image-size 32, -a resnet18\)/,
      'the message names what was allocated and the settings that size it');
    const files = fs.existsSync(out) ? fs.readdirSync(out) : [];
    t.notOk(files.some((f) => f.endsWith('.pth.tar') || f.endsWith('.tmp')), `no checkpoint, no temp file (${files.join(', ') || 'nothing'})`);
    // Resuming the device run of the first test under the same cap: the checkpoint it resumes stays as it was.
    const dev = path.join(dir, 'dev'), last = path.join(dev, 'default_0001.pth.tar');
    if (!fs.existsSync(last)) return;
    const before = fs.readFileSync(last);
    const resumed = spawnSync(process.execPath, [bin, 'pretrain', data, ...BASE, '--epochs', '3', '--gpu', '0', '--resume', 'latest', '--out-dir', dev], {
      encoding: 'utf8', env: { ...process.env, SSL_INV_CUDA_EMU_MEMORY: String(150_000_000) }, timeout: 300_000,
    });
    t.equal(resumed.status, 1, 'a resumed run out of memory: exit 1', { stderr: resumed.stderr });
    t.match(resumed.stderr, /ERR_OUT_OF_MEMORY: .*\(this run: --batch-size 4/);
    t.ok(fs.readFileSync(last).equals(before), 'the checkpoint it resumed from is intact');
    t.notOk(fs.readdirSync(dev).some((f) => f === 'default_0002.pth.tar' || f.endsWith('.tmp')), 'no new checkpoint, no temp file');
    // A device fault mid-step (the emulator's 40th kernel launch, in the step's forward pass): the run
    // stops with ERR_DEVICE_FAULT, its checkpoint stays as it was (the first test resumed this one).
    const faulted = spawnSync(process.execPath, [bin, 'pretrain', data, ...BASE, '--epochs', '3', '--gpu', '0', '--resume', 'latest', '--out-dir', dev], {
      encoding: 'utf8', env: { ...process.env, SSL_INV_CUDA_EMU_FAULT_AT: '40' }, timeout: 300_000,
    });
    t.equal(faulted.status, 1, 'a device fault: exit 1', { stderr: faulted.stderr });
    t.match(faulted.stderr, /ERR_DEVICE_FAULT: .*cudaErrorIllegalAddress.*start a new process \(pretrain: --resume latest continues from the last checkpoint\)/);
    t.ok(fs.readFileSync(last).equals(before), 'the checkpoint it resumed from is intact');
    t.notOk(fs.readdirSync(dev).some((f) => f === 'default_0002.pth.tar' || f.endsWith('.tmp')), 'no new checkpoint, no temp file');
  });
}
