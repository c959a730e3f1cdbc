// pretrain-summary.json's checkpoint list (cli/pretrain-manifest.ts; RELIABILITY.md §5's manifest
// with size and sha256): kept across resumes, and checked when a run resumes.
//   1. Two epochs, then a resume to four: the list holds all four checkpoints (epoch, file, sha256,
//      bytes), each matching its file; `epochs` lists the resumed invocation's two.
//   2. A checkpoint replaced by another valid one (epoch 2's name holding epoch 1's bytes, which
//      would resume at the wrong epoch): --resume latest passes over it with ERR_CHECKPOINT_CORRUPT
//      naming both digests and resumes from the one before; --resume FILE refuses it and writes
//      nothing; --resume-override resumes from it anyway, saying so.
//   3. A summary of the older form (epochs[] only) still gives the digests; an unparseable one, or
//      one that cannot be read, is told and checks nothing; a missing one is not told.
import t from 'tap';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../helpers/cli';
import { writeTinyImageFolder } from '../helpers/tiny-image-folder';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-manifest-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const data = path.join(dir, 'data');
const BASE = ['-a', 'resnet18', '-b', '4', '--moco-k', '16', '--moco-dim', '16', '--image-size', '32', '--threads', '2'];
const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const summaryOf = (run: string) => JSON.parse(fs.readFileSync(path.join(run, 'pretrain-summary.json'), 'utf8'));
const name = (e: number) => `default_${String(e).padStart(4, '0')}.pth.tar`;

t.before(async () => {
  await writeTinyImageFolder(data, 8);
});

t.test('the list is kept across a resume and matches the files', async (t) => {
  const run = path.join(dir, 'kept');
  let r = await runCli(['pretrain', data, ...BASE, '--epochs', '2', '--out-dir', run, '--quiet']);
  t.equal(r.code, 0, r.stderr);
  r = await runCli(['pretrain', data, ...BASE, '--epochs', '4', '--out-dir', run, '--resume', 'latest', '--quiet']);
  t.equal(r.code, 0, r.stderr);
  const s = summaryOf(run);
  t.same(s.epochs.map((e: { epoch: number }) => e.epoch), [2, 3], 'epochs: this invocation\'s');
  t.same(s.checkpoints.map((c: { epoch: number; file: string }) => [c.epoch, c.file]), [0, 1, 2, 3].map((e) => [e, name(e)]));
  for (const c of s.checkpoints as { file: string; sha256: string; bytes: number }[]) {
    t.equal(c.sha256, sha(path.join(run, c.file)), `${c.file}: sha256`);
    t.equal(c.bytes, fs.statSync(path.join(run, c.file)).size, `${c.file}: bytes`);
  }
});

t.test('a checkpoint whose bytes changed is not resumed from silently', async (t) => {
  const run = path.join(dir, 'swapped');
  let r = await runCli(['pretrain', data, ...BASE, '--epochs', '3', '--out-dir', run, '--quiet']);
  t.equal(r.code, 0, r.stderr);
  const recorded = summaryOf(run).checkpoints as { sha256: string }[];
  // Epoch 2's file now holds epoch 1's checkpoint: valid, but it would resume at epoch 2, not 3.
  fs.copyFileSync(path.join(run, name(1)), path.join(run, name(2)));
  const before = fs.readdirSync(run).sort();
  const explicit = await runCli(['pretrain', data, ...BASE, '--epochs', '4', '--out-dir', run, '--resume', path.join(run, name(2))]);
  t.equal(explicit.code, 1);
  t.match(explicit.stderr, new RegExp(`ERR_CHECKPOINT_CORRUPT: .*${name(2)}: the file changed since this run wrote it: sha256 ${recorded[1]!.sha256}, ` +
    `pretrain-summary.json records ${recorded[2]!.sha256}`));
  t.same(fs.readdirSync(run).sort(), before, 'nothing written');
  const latest = await runCli(['pretrain', data, ...BASE, '--epochs', '4', '--out-dir', run, '--resume', 'latest']);
  t.equal(latest.code, 0, latest.stderr);
  t.match(latest.stderr, new RegExp(`--resume latest: ERR_CHECKPOINT_CORRUPT: .*${name(2)}: the file changed since this run wrote it.*; trying the checkpoint before it`));
  t.match(latest.stderr, new RegExp(`resumed from .*${name(1)} \\(epoch 2,`));
  const s = summaryOf(run);
  t.same(s.epochs.map((e: { epoch: number }) => e.epoch), [2, 3]);
  t.equal(s.checkpoints.find((c: { epoch: number }) => c.epoch === 2).sha256, sha(path.join(run, name(2))), 'epoch 2 retrained and recorded');
  // Override: told, and done.
  fs.copyFileSync(path.join(run, name(0)), path.join(run, name(3)));
  const forced = await runCli(['pretrain', data, ...BASE, '--epochs', '2', '--out-dir', run, '--resume', path.join(run, name(3)), '--resume-override']);
  t.equal(forced.code, 0, forced.stderr);
  t.match(forced.stderr, /--resume-override: .*the file changed since this run wrote it.*; resuming from it anyway/);
  t.match(forced.stderr, /resumed from .* \(epoch 1,/);
});

t.test('older summaries give their digests; an unreadable one checks nothing, and says so', async (t) => {
  const run = path.join(dir, 'older');
  let r = await runCli(['pretrain', data, ...BASE, '--epochs', '2', '--out-dir', run, '--quiet']);
  t.equal(r.code, 0, r.stderr);
  const s = summaryOf(run);
  delete s.checkpoints;  // the form written before the list existed
  fs.writeFileSync(path.join(run, 'pretrain-summary.json'), JSON.stringify(s));
  fs.copyFileSync(path.join(run, name(0)), path.join(run, name(1)));
  r = await runCli(['pretrain', data, ...BASE, '--epochs', '2', '--out-dir', run, '--resume', path.join(run, name(1))]);
  t.equal(r.code, 1);
  t.match(r.stderr, /ERR_CHECKPOINT_CORRUPT: .*the file changed since this run wrote it/);
  fs.writeFileSync(path.join(run, 'pretrain-summary.json'), '{ not json');
  r = await runCli(['pretrain', data, ...BASE, '--epochs', '2', '--out-dir', run, '--resume', path.join(run, name(1))]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /pretrain-summary\.json is not valid JSON .*: its checkpoint digests are not checked/);
  t.same(summaryOf(run).checkpoints.map((c: { epoch: number }) => c.epoch), [1], 'a new list from here on');
});

t.test('a summary that exists but cannot be read is told and checks nothing', async (t) => {
  // A folder under the summary's name: reading it fails with EISDIR (permissions would not stop root).
  const { readRecordedCheckpoints } = await import('../../src/cli/pretrain-manifest');
  const run = path.join(dir, 'unreadable');
  fs.mkdirSync(path.join(run, 'pretrain-summary.json'), { recursive: true });
  const notices: string[] = [];
  t.same(await readRecordedCheckpoints(run, (l) => notices.push(l)), []);
  t.equal(notices.length, 1);
  t.match(notices[0], /cannot read .*pretrain-summary\.json \(EISDIR.*\): its checkpoint digests are not checked/);
  // No summary at all is the normal first run: nothing to tell.
  notices.length = 0;
  t.same(await readRecordedCheckpoints(path.join(dir, 'no-run-here'), (l) => notices.push(l)), []);
  t.same(notices, []);
});
