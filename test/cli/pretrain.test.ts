// `ssl-inv pretrain` end to end on a tiny ImageFolder (ResNet-18, 32x32 views, batch 4): the
// checkpoints main_moco.py would write, the log, the summary and the table; a resumed run gives the
// same bytes as the run it continues; resuming from a main_moco.py checkpoint (the torch.save'd
// fixture); the errors.
import t from 'tap';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadFeatureExtractor } from '../../src/eval/model-loader';
import { loadCheckpoint } from '../../src/io/torch-checkpoint';
import { runCli } from '../helpers/cli';
import { writeTinyImageFolder } from '../helpers/tiny-image-folder';
import { materializeCheckpoint } from '../helpers/model-fixtures';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-pretrain-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const data = path.join(dir, 'data');

t.before(async () => {
  await writeTinyImageFolder(data, 9);
});

const BASE = ['-a', 'resnet18', '-b', '4', '--moco-k', '16', '--moco-dim', '16', '--mlp', '--cos', '--image-size', '32', '--threads', '2'];

t.test('two epochs: checkpoints, log, summary and table', async (t) => {
  const out = path.join(dir, 'run');
  const r = await runCli(['pretrain', data, ...BASE, '--epochs', '2', '--out-dir', out, '-p', '1']);
  t.equal(r.code, 0, 'exit 0', { stderr: r.stderr });
  t.match(r.stderr, /Epoch: \[0\]\[0\/2\]\tLoss \d\.\d{4}e[+-]\d\d \(/, "main_moco.py's progress line, Python's exponent format");
  t.match(r.stderr, /\tAcc@1 +\d+\.\d\d \( *\d+\.\d\d\)\tAcc@5 +\d+\.\d\d \( *\d+\.\d\d\)\t/, "main_moco.py's Acc@1 and Acc@5 meters");
  t.match(r.stderr, /img\/s\tETA \S+ \(run \S+\)\n/, "the epoch's ETA and the run's");
  t.match(r.stdout, /^epoch\s+lr\s+steps\s+mean loss\s+Acc@1\s+Acc@5/);
  t.match(r.stdout, /\n1\s+0\.01500\s+2\s+/, 'the cosine schedule: lr 0.03 * 0.5 * (1 + cos(pi / 2))');
  t.same(fs.readdirSync(out).sort(), ['default_0000.pth.tar', 'default_0001.pth.tar', 'pretrain-log.csv', 'pretrain-summary.json']);
  const log = fs.readFileSync(path.join(out, 'pretrain-log.csv'), 'utf8').trim().split('\n');
  t.equal(log[0], 'epoch,step,lr,loss,acc1,acc5');
  t.equal(log.length, 5, 'two steps per epoch (9 images, batch 4, the remainder dropped)');
  for (const row of log.slice(1)) {
    const [, , , loss, acc1, acc5] = row.split(',').map(Number);
    t.ok(loss! > 0 && acc1! >= 0 && acc1! <= acc5! && acc5! <= 100 && (acc1! * 4) % 100 === 0, `a row of the log: ${row}`);
  }
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'pretrain-summary.json'), 'utf8'));
  t.equal(summary.images, 9);
  t.equal(summary.classes, 2);
  t.equal(summary.epochs.length, 2);
  t.type(summary.epochs[0].meanAcc1, 'number');
  t.equal(summary.epochs[1].checkpointSha256,
    createHash('sha256').update(fs.readFileSync(path.join(out, 'default_0001.pth.tar'))).digest('hex'), "the checkpoint's SHA-256");
  t.equal(summary.options.seed, 0);

  const ckpt = await loadCheckpoint(path.join(out, 'default_0001.pth.tar'));
  const root = ckpt.root as Map<string, unknown>;
  t.same([...root.keys()], ['epoch', 'arch', 'state_dict', 'optimizer', 'ssl_inv_run'], "main_moco.py's checkpoint dict, and the run's settings");
  const runSettings = root.get('ssl_inv_run') as Map<string, unknown>;
  t.same(Object.fromEntries([...runSettings].filter(([k]) => k !== 'files_sha256')),
    { format: 1, seed: 0, model: 'default', batch_size: 4, bn_splits: 1, image_size: 32, images: 9 }, 'the settings its batches and views depend on');
  t.match(runSettings.get('files_sha256'), /^[0-9a-f]{64}$/, "and a digest of the training images' paths");
  t.equal(root.get('epoch'), 2);
  t.equal(root.get('arch'), 'resnet18');
  const sd = root.get('state_dict') as Map<string, { shape: number[] }>;
  t.same([...sd.keys()].slice(0, 3), ['module.queue', 'module.queue_ptr', 'module.encoder_q.conv1.weight'], 'nn.Module order');
  t.same(sd.get('module.queue')!.shape, [16, 16]);
  const opt = root.get('optimizer') as Map<string, unknown>;
  t.equal((opt.get('state') as Map<number, unknown>).size, 64, "a momentum buffer for each of encoder_q's 64 parameters");
  const group = (opt.get('param_groups') as Map<string, unknown>[])[0]!;
  t.equal(group.get('lr'), 0.015);
  // main_moco.py's lr, momentum and weight decay are Python floats, SGD's default dampening the int 0.
  const bytes = fs.readFileSync(path.join(out, 'default_0001.pth.tar'));
  for (const key of ['lr', 'momentum', 'weight_decay']) t.ok(bytes.includes(Buffer.concat([Buffer.from(key), Buffer.from([0x47])])), `${key}: BINFLOAT`);
  t.ok(bytes.includes(Buffer.concat([Buffer.from('dampening'), Buffer.from([0x4b, 0])])), 'dampening: BININT1 0');
  t.equal((group.get('params') as number[]).length, 128, 'encoder_q and encoder_k parameters, as model.parameters()');

  const model = await loadFeatureExtractor(path.join(out, 'default_0001.pth.tar'));
  t.equal(model.arch, 'resnet18', 'the evaluators load it (encoder_q, fc removed)');
  model.net.dispose();
});

t.test('--resume latest: the newest readable checkpoint of the run in --out-dir', async (t) => {
  const full = path.join(dir, 'latest-full'), run = path.join(dir, 'latest');
  const args = ['pretrain', data, ...BASE, '--quiet'];
  t.equal((await runCli([...args, '--epochs', '3', '--out-dir', full])).code, 0);
  // Nothing to resume from: the run starts afresh and says so.
  const first = await runCli(['pretrain', data, ...BASE, '--epochs', '2', '--out-dir', run, '--resume', 'latest']);
  t.equal(first.code, 0, 'exit 0', { stderr: first.stderr });
  t.match(first.stderr, /--resume latest: no checkpoint of this run \(default_NNNN\.pth\.tar\) in .*; starting at epoch 0/);
  // A crash left the newest checkpoint truncated (and a temp file of an unfinished save, which never counts).
  const newest = path.join(run, 'default_0001.pth.tar');
  const bytes = fs.readFileSync(newest);
  fs.writeFileSync(newest, bytes.subarray(0, bytes.length >> 1));
  fs.writeFileSync(path.join(run, '.default_0002.pth.tar.123.abcdef012345.tmp'), 'partial');
  const second = await runCli(['pretrain', data, ...BASE, '--epochs', '3', '--out-dir', run, '--resume', 'latest']);
  t.equal(second.code, 0, 'exit 0', { stderr: second.stderr });
  t.match(second.stderr, /--resume latest: ERR_CHECKPOINT_CORRUPT: .*default_0001\.pth\.tar.*; trying the checkpoint before it/);
  t.match(second.stderr, /resumed from .*default_0000\.pth\.tar \(epoch 1, with the optimizer's momentum\)/);
  for (const name of ['default_0001.pth.tar', 'default_0002.pth.tar']) {
    t.ok(fs.readFileSync(path.join(full, name)).equals(fs.readFileSync(path.join(run, name))), `${name}: the uninterrupted run's bytes`);
  }
  t.same(fs.readFileSync(path.join(run, 'pretrain-log.csv'), 'utf8'), fs.readFileSync(path.join(full, 'pretrain-log.csv'), 'utf8'),
    "the log: the uninterrupted run's");
  const summary = JSON.parse(fs.readFileSync(path.join(run, 'pretrain-summary.json'), 'utf8'));
  t.equal(summary.resumedFrom, path.join(run, 'default_0000.pth.tar'), 'the summary names the checkpoint found');
  t.equal(summary.options.resume, 'latest');
  // Every checkpoint unreadable: refused, not started over; nothing is written.
  for (const name of ['default_0000.pth.tar', 'default_0001.pth.tar', 'default_0002.pth.tar']) fs.writeFileSync(path.join(run, name), 'garbage');
  const before = fs.readdirSync(run).sort();
  const third = await runCli(['pretrain', data, ...BASE, '--epochs', '4', '--out-dir', run, '--resume', 'latest']);
  t.not(third.code, 0);
  t.match(third.stderr, /ERR_CHECKPOINT_CORRUPT/);
  t.match(third.stderr, /none of the 3 checkpoint\(s\) of this run can be read, so the run is not started over/);
  t.same(fs.readdirSync(run).sort(), before, 'no file added or removed');
  t.equal(fs.readFileSync(path.join(run, 'default_0002.pth.tar'), 'utf8'), 'garbage');
  // Another model's checkpoints in the same folder are not this run's.
  const other = await runCli(['pretrain', data, ...BASE, '--model', 'ventral', '--epochs', '1', '--out-dir', run, '--resume', 'latest']);
  t.equal(other.code, 0, 'exit 0', { stderr: other.stderr });
  t.match(other.stderr, /no checkpoint of this run \(ventral_NNNN\.pth\.tar\)/);
});

t.test('a resumed run writes the bytes of the run it continues', async (t) => {
  const full = path.join(dir, 'full'), resumed = path.join(dir, 'resumed');
  const args = ['pretrain', data, ...BASE, '--epochs', '3', '--quiet'];
  t.equal((await runCli([...args, '--out-dir', full])).code, 0);
  const r = await runCli([...args, '--out-dir', resumed, '--resume', path.join(full, 'default_0001.pth.tar')]);
  t.equal(r.code, 0, 'exit 0', { stderr: r.stderr });
  t.same(fs.readdirSync(resumed).filter((f) => f.endsWith('.pth.tar')), ['default_0002.pth.tar'], 'only the remaining epoch');
  const fullLog = fs.readFileSync(path.join(full, 'pretrain-log.csv'), 'utf8').trim().split('\n');
  t.same(fs.readFileSync(path.join(resumed, 'pretrain-log.csv'), 'utf8').trim().split('\n'), [fullLog[0], ...fullLog.slice(-2)],
    "the resumed epoch's rows: the same loss and accuracies as the uninterrupted run's");
  t.ok(fs.readFileSync(path.join(full, 'default_0002.pth.tar')).equals(fs.readFileSync(path.join(resumed, 'default_0002.pth.tar'))),
    'identical checkpoints: weights, queue, momentum, counters');
  const logBefore = fs.readFileSync(path.join(resumed, 'pretrain-log.csv'));
  const done = await runCli([...args, '--out-dir', resumed, '--resume', path.join(full, 'default_0002.pth.tar')]);
  t.equal(done.code, 0);
  t.match(done.stdout, /nothing to do: the run is at epoch 3 of 3/);
  t.ok(fs.readFileSync(path.join(resumed, 'pretrain-log.csv')).equals(logBefore), 'a run with nothing to do leaves the log as it was');
  // A run interrupted after its last checkpoint logged rows that the resumed run writes again: they
  // are replaced, not repeated.
  fs.writeFileSync(path.join(resumed, 'pretrain-log.csv'), [...fullLog.slice(0, 5), '2,0,0.0075,9.25,0,0', ''].join('\n'));
  const interrupted = await runCli([...args, '--out-dir', resumed, '--resume', path.join(full, 'default_0001.pth.tar')]);
  t.equal(interrupted.code, 0);
  t.same(fs.readFileSync(path.join(resumed, 'pretrain-log.csv'), 'utf8').trim().split('\n'), fullLog,
    "the interrupted epoch's rows replaced: the uninterrupted run's log");
  t.same(fs.readdirSync(resumed).filter((f) => f.endsWith('.tmp')), [], 'the rewrite left no temp file');
  // A log with other columns (an older version's) is kept under another name, not appended to.
  fs.writeFileSync(path.join(resumed, 'pretrain-log.csv'), 'epoch,step,lr,loss\n0,0,0.03,9.5\n');
  const again = await runCli([...args, '--out-dir', resumed, '--resume', path.join(full, 'default_0001.pth.tar')]);
  t.equal(again.code, 0);
  const kept = fs.readdirSync(resumed).filter((f) => /^pretrain-log\.\d+\.csv$/.test(f));
  t.equal(kept.length, 1, 'the old log kept');
  t.equal(fs.readFileSync(path.join(resumed, kept[0]!), 'utf8'), 'epoch,step,lr,loss\n0,0,0.03,9.5\n');
  t.same(fs.readFileSync(path.join(resumed, 'pretrain-log.csv'), 'utf8').trim().split('\n'), [fullLog[0], ...fullLog.slice(-2)],
    'a new log with the epoch that ran');
  fs.rmSync(full, { recursive: true });
});

t.test("a resume must continue the checkpoint's run: other settings are refused unless overridden", async (t) => {
  const run = path.join(dir, 'settings');
  const args = ['pretrain', data, ...BASE, '--quiet'];
  t.equal((await runCli([...args, '--epochs', '1', '--out-dir', run])).code, 0);
  const first = path.join(run, 'default_0000.pth.tar');
  const bytes = fs.readFileSync(first);
  const cases: [string[], RegExp][] = [
    [['-b', '2'], /ssl_inv_run\.batch_size: .*--batch-size was 4, now 2/],
    [['--seed', '5'], /ssl_inv_run\.seed: .*--seed was 0, now 5/],
    [['--image-size', '48'], /ssl_inv_run\.image_size: .*--image-size was 32, now 48/],
    [['--bn-splits', '2'], /ssl_inv_run\.bn_splits: .*--bn-splits was 1, now 2/],
    [['--model', 'ventral'], /ssl_inv_run\.model: .*--model was default, now ventral/],
  ];
  for (const [flags, msg] of cases) {
    const r = await runCli([...args, '--epochs', '2', '--out-dir', run, '--resume', first, ...flags]);
    t.equal(r.code, 1, flags.join(' '));
    t.match(r.stderr, new RegExp(`ERR_CHECKPOINT_KEYS: ${first.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${msg.source}.*--resume-override`), flags.join(' '));
  }
  const latest = await runCli([...args, '--epochs', '2', '--out-dir', run, '--resume', 'latest', '-b', '2']);
  t.equal(latest.code, 1, '--resume latest is refused too (not passed over as unreadable)');
  t.match(latest.stderr, /ERR_CHECKPOINT_KEYS: .*default_0000\.pth\.tar: ssl_inv_run\.batch_size/);
  // Other training images: one more in the folder.
  const more = path.join(dir, 'more-data');
  fs.cpSync(data, more, { recursive: true });
  fs.copyFileSync(path.join(more, 'train', 'cat', 'img1.png'), path.join(more, 'train', 'cat', 'zz-extra.png'));
  const moreImages = await runCli(['pretrain', more, ...BASE, '--quiet', '--epochs', '2', '--out-dir', run, '--resume', first]);
  t.equal(moreImages.code, 1);
  t.match(moreImages.stderr, /ssl_inv_run\.images: .*the training images \(count\) was 9, now 10; the training images \(their paths\) differ/);
  fs.rmSync(more, { recursive: true });
  t.same(fs.readdirSync(run).filter((f) => f.endsWith('.pth.tar')), ['default_0000.pth.tar'], 'nothing was trained by a refused resume');
  const forced = await runCli(['pretrain', data, ...BASE, '--epochs', '2', '--out-dir', run, '--resume', first, '--seed', '5', '--resume-override']);
  t.equal(forced.code, 0, '--resume-override goes on', { stderr: forced.stderr });
  t.match(forced.stderr, /--resume-override: resuming .*default_0000\.pth\.tar with other settings than its run's \(--seed was 0, now 5\)/);
  const second = await loadCheckpoint(path.join(run, 'default_0001.pth.tar'));
  t.equal(((second.root as Map<string, unknown>).get('ssl_inv_run') as Map<string, unknown>).get('seed'), 5, 'the new checkpoint records the new seed');
  t.ok(fs.readFileSync(first).equals(bytes), 'the checkpoint resumed from is untouched');

  // A --resume file that is not there is an error, never a fresh start (main_moco.py's "no checkpoint found").
  const nowhere = path.join(dir, 'nowhere');
  const missing = await runCli([...args, '--epochs', '2', '--out-dir', nowhere, '--resume', path.join(dir, 'nope.pth.tar')]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /ERR_FILE_NOT_FOUND: .*nope\.pth\.tar/);
  t.notOk(fs.existsSync(nowhere), 'nothing written');

  // A run that diverges (here, from a learning rate of 1e30) stops with ERR_NON_FINITE before its
  // checkpoint: a NaN loss, or a NaN weight found as the checkpoint is being written.
  fs.rmSync(path.join(run, 'default_0001.pth.tar'));
  const diverged = await runCli([...args, '--epochs', '2', '--out-dir', run, '--resume', first, '--lr', '1e30']);
  t.equal(diverged.code, 1);
  t.match(diverged.stderr, /ERR_NON_FINITE: /);
  t.same(fs.readdirSync(run).filter((f) => /\.pth\.tar|\.tmp/.test(f)), ['default_0000.pth.tar'], 'no checkpoint of the diverged epoch, no temp file');
  t.ok(fs.readFileSync(first).equals(bytes), 'the previous checkpoint intact');
  fs.rmSync(run, { recursive: true });
});

t.test('--bn-splits: two emulated GPUs, resumable, and not the one-GPU run', async (t) => {
  const one = path.join(dir, 'one'), full = path.join(dir, 'split-full'), resumed = path.join(dir, 'split-resumed');
  const args = ['pretrain', data, ...BASE, '--epochs', '2', '--quiet'];
  t.equal((await runCli([...args, '--out-dir', one])).code, 0);
  const r = await runCli([...args, '--bn-splits', '2', '--out-dir', full]);
  t.equal(r.code, 0, 'exit 0', { stderr: r.stderr });
  const resume = await runCli([...args, '--bn-splits', '2', '--out-dir', resumed, '--resume', path.join(full, 'default_0000.pth.tar')]);
  t.equal(resume.code, 0, 'exit 0', { stderr: resume.stderr });
  const last = (d: string) => fs.readFileSync(path.join(d, 'default_0001.pth.tar'));
  t.ok(last(full).equals(last(resumed)), 'a resumed split run writes the same bytes (the key permutations are seeded by epoch and step)');
  t.notOk(last(full).equals(last(one)), 'per-GPU batch norm changes the run');
  const summary = JSON.parse(fs.readFileSync(path.join(full, 'pretrain-summary.json'), 'utf8'));
  t.equal(summary.options.bnSplits, 2, 'the summary records the emulated GPUs');
  // The log: the batch's columns, then each GPU's; the batch's loss and accuracies are the GPUs' means.
  const log = fs.readFileSync(path.join(full, 'pretrain-log.csv'), 'utf8').trim().split('\n');
  t.equal(log[0], 'epoch,step,lr,loss,acc1,acc5,loss_gpu0,acc1_gpu0,acc5_gpu0,loss_gpu1,acc1_gpu1,acc5_gpu1');
  t.equal(log.length, 5, 'two steps in each of two epochs');
  for (const row of log.slice(1)) {
    const [, , , loss, acc1, acc5, l0, a10, a50, l1, a11, a51] = row.split(',').map(Number) as number[];
    t.ok(Math.abs(loss! - (l0! + l1!) / 2) <= 2e-6 * loss! && l0 !== l1, `the batch's loss is the GPUs' mean: ${row}`);
    t.same([acc1, acc5], [(a10! + a11!) / 2, (a50! + a51!) / 2], 'and its accuracies');
  }
  // main_moco.py's processes each print a line: GPU 0's, then GPU 1's (tagged), the rate on the last.
  const ddp = await runCli(['pretrain', data, ...BASE, '--epochs', '1', '-p', '1', '--bn-splits', '2', '--out-dir', one,
    '--multiprocessing-distributed', '--world-size', '1', '--rank', '0']);
  t.equal(ddp.code, 0, 'exit 0', { stderr: ddp.stderr });
  const meterLine = (gpu: number, rest: string) => new RegExp(`^Epoch: \\[0\\]\\[0/2\\]\\tLoss \\d\\.\\d{4}e[+-]\\d\\d \\(\\d\\.\\d{4}e[+-]\\d\\d\\)` +
    `\\tAcc@1 +\\d+\\.\\d\\d \\( *\\d+\\.\\d\\d\\)\\tAcc@5 +\\d+\\.\\d\\d \\( *\\d+\\.\\d\\d\\)\\tGPU ${gpu}${rest}$`, 'm');
  t.match(ddp.stderr, meterLine(0, ''), "GPU 0's meters, main_moco.py's format");
  t.match(ddp.stderr, meterLine(1, '\\t[\\d.]+ img/s\\tETA .*'), "GPU 1's, then the rate and ETA");
  for (const d of [one, full, resumed]) fs.rmSync(d, { recursive: true });
});

t.test('an unreadable image: the run stops by default, or goes on with --on-error skip', async (t) => {
  const bad = path.join(dir, 'bad-data');
  fs.cpSync(data, bad, { recursive: true });
  const broken = path.join(bad, 'train', 'cat', 'img1.png');
  fs.writeFileSync(broken, fs.readFileSync(broken).subarray(0, 60));
  const out = path.join(dir, 'bad-out');
  const args = ['pretrain', bad, ...BASE, '--epochs', '1', '--out-dir', out, '--quiet'];
  const stop = await runCli(args);
  t.equal(stop.code, 1);
  t.match(stop.stderr, /ERR_IMAGE_DECODE: .*img1\.png/, 'the error names the file');
  t.notOk(fs.existsSync(path.join(out, 'default_0000.pth.tar')), 'no checkpoint of the failed epoch');
  const skip = await runCli([...args, '--on-error', 'skip']);
  t.equal(skip.code, 0, 'exit 0', { stderr: skip.stderr });
  t.match(skip.stderr, /skipped .*img1\.png \(epoch 0, step \d\): ERR_IMAGE_DECODE: .*its place in the batch went to .*\.png/);
  t.ok(fs.existsSync(path.join(out, 'default_0000.pth.tar')), 'the epoch finished');
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'pretrain-summary.json'), 'utf8'));
  const listed = summary.skippedImages as { file: string; code: string; times: number }[];
  const inEpoch = fs.readFileSync(path.join(out, 'pretrain-log.csv'), 'utf8').trim().split('\n').length - 1;
  t.equal(inEpoch, 2, 'both steps ran');
  t.same(listed.map((e) => [e.file, e.code, e.times]), [[broken, 'ERR_IMAGE_DECODE', 1]], 'the summary lists it');
  for (const cls of ['cat', 'dog']) for (const f of fs.readdirSync(path.join(bad, 'train', cls))) fs.writeFileSync(path.join(bad, 'train', cls, f), 'not an image');
  const none = await runCli([...args, '--on-error', 'skip']);
  t.equal(none.code, 1);
  t.match(none.stderr, /ERR_IMAGE_DECODE: .*no image of epoch 0, step 0 could be read/, 'a batch with nothing readable stops the run');
  fs.rmSync(bad, { recursive: true });
  fs.rmSync(out, { recursive: true });
});

t.test("resuming from main_moco.py's own checkpoint (torch.save'd fixture)", async (t) => {
  const ckpt = await materializeCheckpoint('resnet18-moco');
  const out = path.join(dir, 'orig');
  const r = await runCli(['pretrain', data, '-a', 'resnet18', '-b', '4', '--moco-k', '256', '--mlp', '--cos', '--image-size', '32',
    '--epochs', '201', '--max-steps-per-epoch', '1', '--resume', ckpt, '--out-dir', out]);
  t.equal(r.code, 0, 'exit 0', { stderr: r.stderr });
  t.match(r.stderr, /resumed from .* \(epoch 200, with the optimizer's momentum\)/);
  t.ok(fs.existsSync(path.join(out, 'default_0200.pth.tar')), 'epoch 200 written');
  const bad = await runCli(['pretrain', data, '-a', 'resnet50', '-b', '4', '--moco-k', '256', '--mlp', '--epochs', '201', '--resume', ckpt, '--out-dir', out, '--quiet']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /ERR_CHECKPOINT_ARCH: .*resnet18, but --arch is resnet50/);
  const dims = await runCli(['pretrain', data, '-a', 'resnet18', '-b', '4', '--moco-k', '16', '--mlp', '--epochs', '201', '--resume', ckpt, '--out-dir', out, '--quiet']);
  t.equal(dims.code, 1);
  t.match(dims.stderr, /ERR_CHECKPOINT_KEYS: .*K 256/);
  const plain = await runCli(['pretrain', data, ...BASE, '--epochs', '2', '--resume', await materializeCheckpoint('resnet18-plain'), '--out-dir', out, '--quiet']);
  t.equal(plain.code, 1);
  t.match(plain.stderr, /ERR_CHECKPOINT_KEYS/, 'a torchvision state dict is not a MoCo checkpoint');
  fs.rmSync(out, { recursive: true });
});

t.test('bad flags and data', async (t) => {
  const out = path.join(dir, 'bad');
  const cases: [string[], number, RegExp][] = [
    // A device that does not exist (cuda:9 on a machine with fewer; any on one without a GPU).
    [['--gpu', '9'], 1, /ERR_DEVICE_UNAVAILABLE: --gpu: cuda:9/],
    [['--device', 'cuda:9'], 1, /ERR_DEVICE_UNAVAILABLE: --device: cuda:9/],
    [['--gpu', 'x'], 2, /ERR_USAGE: --gpu takes a device number, got 'x'/],
    [['--gpu', '1', '--device', 'cuda'], 2, /ERR_USAGE: --gpu 1 and --device cuda name different devices/],
    [['--gpu', '0', '--device', 'cpu'], 2, /ERR_USAGE: --gpu 0 and --device cpu name different devices/],
    [['--moco-k', '18'], 2, /ERR_USAGE: --moco-k 18 must be a multiple of --batch-size 4/],
    [['-b', '1', '--moco-k', '16'], 2, /ERR_USAGE: --batch-size: train-mode batch norm needs 2/],
    [['--moco-t', '0'], 2, /ERR_USAGE: --moco-t/],
    [['--lr', 'abc'], 2, /ERR_USAGE: --lr takes a number/],
    [['--model', 'sideways'], 2, /ERR_USAGE: .*sideways/],
    [['--image-size', '16'], 2, /ERR_USAGE: --image-size/],
    [['--bn-splits', '3'], 2, /ERR_USAGE: --bn-splits 3: --batch-size 4 must split into 3 equal groups/],
    [['--bn-splits', '4'], 2, /ERR_USAGE: --bn-splits 4: .*groups of 2 or more/],
    [['--bn-splits', '0'], 2, /ERR_USAGE: .*--bn-splits takes an integer >= 1/],
  ];
  for (const [flags, code, msg] of cases) {
    const r = await runCli(['pretrain', data, ...BASE, '--epochs', '1', '--out-dir', out, '--quiet', ...flags]);
    t.equal(r.code, code, flags.join(' '));
    t.match(r.stderr, msg, flags.join(' '));
  }
  // SSL_INV_DEVICE names the device --device auto means (a missing one is refused, naming the variable).
  const envBefore = process.env.SSL_INV_DEVICE;
  process.env.SSL_INV_DEVICE = 'cuda:9';
  try {
    const env = await runCli(['pretrain', data, ...BASE, '--epochs', '1', '--out-dir', out, '--quiet']);
    t.equal(env.code, 1, 'SSL_INV_DEVICE=cuda:9');
    t.match(env.stderr, /ERR_DEVICE_UNAVAILABLE: SSL_INV_DEVICE: cuda:9/, 'SSL_INV_DEVICE=cuda:9');
  } finally {
    if (envBefore === undefined) delete process.env.SSL_INV_DEVICE;
    else process.env.SSL_INV_DEVICE = envBefore;
  }
  const few = await runCli(['pretrain', data, ...BASE, '-b', '16', '--epochs', '1', '--out-dir', out, '--quiet']);
  t.equal(few.code, 1);
  t.match(few.stderr, /ERR_DATASET_LAYOUT: .*9 image\(s\), fewer than one batch of 16/);
  const missing = await runCli(['pretrain', path.join(dir, 'nowhere'), ...BASE, '--epochs', '1', '--out-dir', out, '--quiet']);
  t.equal(missing.code, 1);
  t.notOk(fs.existsSync(out) && fs.readdirSync(out).some((f) => f.endsWith('.pth.tar')), 'no checkpoint from a failed run');
  t.notOk(fs.existsSync(out), 'runs refused before their first epoch leave no file, not even the log or the directory');
  const ddp = await runCli(['pretrain', data, ...BASE, '--epochs', '1', '--max-steps-per-epoch', '1', '--out-dir', out,
    '--world-size', '1', '--rank', '0', '--dist-url', 'tcp://localhost:10001', '--multiprocessing-distributed', '--aug-plus']);
  t.equal(ddp.code, 0, "main_moco.py's usual command line runs");
  t.match(ddp.stderr, /DistributedDataParallel flags ignored: this is one process/);
});
