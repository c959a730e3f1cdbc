// --progress auto|lines|json|none (and SSL_INV_PROGRESS): the progress meter in each mode (with a
// mocked clock), and whole commands in json mode, where every stderr line must be one JSON object:
// features, pretrain's step events, notices, usage and file errors.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { createProgress } from '../../src/cli/progress';
import { setProgressMode } from '../../src/cli/stderr-output';
import { runCli } from '../helpers/cli';
import { MODEL_FIXTURES_DIR, materializeCheckpoint } from '../helpers/model-fixtures';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-progress-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Every stderr line parsed as JSON (a line that is not fails the test). */
function events(t: Tap.Test, stderr: string): Array<Record<string, unknown>> {
  const lines = stderr.split('\n').filter((l) => l !== '');
  const out: Array<Record<string, unknown>> = [];
  for (const l of lines) {
    try {
      out.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      t.fail(`a stderr line is not JSON: ${l.slice(0, 200)}`);
    }
  }
  return out;
}

t.test('the meter in each mode, with a mocked clock', async (t) => {
  const realNow = Date.now;
  let now = 1_000_000;
  Date.now = () => now;
  t.teardown(() => { Date.now = realNow; setProgressMode(undefined); });
  const sink = (tty: boolean) => {
    const lines: string[] = [];
    return { lines, stream: { isTTY: tty, write: (s: string) => { lines.push(s); return true; } } as unknown as NodeJS.WriteStream };
  };

  setProgressMode('json');
  const j = sink(true);
  const p = createProgress({ label: 'features', total: 100, unit: 'img', stream: j.stream });
  for (const [dt, n] of [[500, 10], [700, 10], [300, 10], [1500, 20]] as const) {
    now += dt;
    p.tick(n);
  }
  p.done();
  const ev = j.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.same(ev.map((e) => e.type), ['progress', 'progress', 'done'], 'a progress event once a second at most, then done');
  t.same(ev[0], { type: 'progress', label: 'features', done: 20, total: 100, unit: 'img', rate: 16.667, eta_s: 4.8, elapsed_s: 1.2 });
  t.same(ev[2], { type: 'done', label: 'features', done: 50, total: 100, unit: 'img', rate: 16.667, eta_s: 3, elapsed_s: 3 });

  setProgressMode('lines');
  const l = sink(true);
  const q = createProgress({ label: 'probe', total: 4, unit: 'fits', stream: l.stream });
  now += 6000;
  q.tick(1);
  q.done();
  t.match(l.lines[0], /^probe: 1\/4 fits \| 0\.2 fits\/s \| ETA /, 'plain lines even on a terminal');
  t.match(l.lines[1], /^probe: 1\/4 fits in 6s/);

  setProgressMode('none');
  const n = sink(true);
  const r = createProgress({ label: 'x', total: 2, unit: 'img', stream: n.stream });
  now += 6000;
  r.tick(2);
  r.done();
  t.same(n.lines, [], 'none: nothing');
});

t.test('features in json mode: only JSON lines on stderr; stdout unchanged', async (t) => {
  const ckpt = await materializeCheckpoint('resnet18-moco');
  const x64 = path.join(MODEL_FIXTURES_DIR, 'inputs', 'x64.npy');
  const plain = await runCli(['features', '--checkpoint', ckpt, '--input-npy', x64, '--out', path.join(dir, 'a.npy'), '--device', 'cpu']);
  const r = await runCli(['--progress', 'json', 'features', '--checkpoint', ckpt, '--input-npy', x64, '--out', path.join(dir, 'b.npy'), '--device', 'cpu']);
  t.equal(r.code, 0, r.stderr);
  const ev = events(t, r.stderr);
  const done = ev.filter((e) => e.type === 'done');
  t.equal(done.length, 1);
  t.match(done[0], { label: 'features', done: 2, total: 2, unit: 'img' });
  t.equal(r.stdout.replace(/b\.npy/g, 'a.npy').replace(/^time .*\n/m, ''), plain.stdout.replace(/^time .*\n/m, ''), 'the same table');
  t.ok(fs.readFileSync(path.join(dir, 'a.npy')).equals(fs.readFileSync(path.join(dir, 'b.npy'))), 'the same features');
  // After the subcommand's name too.
  const after = await runCli(['features', '--checkpoint', ckpt, '--input-npy', x64, '--out', path.join(dir, 'c.npy'), '--progress', 'json']);
  t.equal(after.code, 0, after.stderr);
  t.ok(events(t, after.stderr).some((e) => e.type === 'done'));
  // none: no progress, but the run is the same.
  const none = await runCli(['features', '--checkpoint', ckpt, '--input-npy', x64, '--out', path.join(dir, 'd.npy'), '--device', 'cpu', '--progress', 'none']);
  t.equal(none.code, 0);
  t.notMatch(none.stderr, /features: 2\/2/, 'no progress line');
});

t.test('errors in json mode: usage, files; bad modes refused', async (t) => {
  const usage = await runCli(['--progress', 'json', 'info', '--bogus']);
  t.equal(usage.code, 2);
  t.same(events(t, usage.stderr).filter((e) => e.type === 'error'), [{ type: 'error', code: 'ERR_USAGE', message: "unknown option '--bogus'" }]);
  const missing = path.join(dir, 'no-such-results');
  const file = await runCli(['report', missing, '--progress=json']);
  t.equal(file.code, 1);
  t.match(events(t, file.stderr), [{ type: 'error', code: 'ERR_FILE_NOT_FOUND', file: missing }]);
  const bad = await runCli(['--progress', 'xml', 'info']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /ERR_USAGE: --progress takes auto, lines, json, none, got 'xml'/);
  process.env.SSL_INV_PROGRESS = 'yaml';
  try {
    const env = await runCli(['info']);
    t.equal(env.code, 2);
    t.match(env.stderr, /ERR_USAGE: SSL_INV_PROGRESS takes auto, lines, json, none, got 'yaml'/);
    process.env.SSL_INV_PROGRESS = 'json';
    const viaEnv = await runCli(['report', missing]);
    t.match(events(t, viaEnv.stderr), [{ type: 'error', code: 'ERR_FILE_NOT_FOUND' }], 'SSL_INV_PROGRESS=json');
    const flagWins = await runCli(['report', missing, '--progress', 'auto']);
    t.match(flagWins.stderr, /^ssl-inv: error ERR_FILE_NOT_FOUND/, 'the flag wins over the environment');
  } finally {
    delete process.env.SSL_INV_PROGRESS;
  }
});

t.test('pretrain in json mode: step events and notices', async (t) => {
  const data = path.join(dir, 'data');
  for (let i = 0; i < 8; i++) {
    const w = 40 + i, h = 36 + i;
    const px = Buffer.alloc(w * h * 3);
    for (let j = 0; j < px.length; j++) px[j] = (j * 5 + i * 29) % 256;
    const cls = path.join(data, 'train', i % 2 ? 'a' : 'b');
    fs.mkdirSync(cls, { recursive: true });
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path.join(cls, `${i}.png`));
  }
  const r = await runCli(['pretrain', data, '-a', 'resnet18', '-b', '4', '--moco-k', '8', '--moco-dim', '8', '--image-size', '32',
    '--epochs', '1', '--bn-splits', '2', '--threads', '2', '-p', '1', '--out-dir', path.join(dir, 'pt'), '--progress', 'json']);
  t.equal(r.code, 0, r.stderr);
  const ev = events(t, r.stderr);
  const steps = ev.filter((e) => e.type === 'step');
  t.equal(steps.length, 2, 'one event per printed step');
  t.match(steps[1], { epoch: 0, step: 1, steps: 2, lr: Number, loss: Number, acc1: Number, acc5: Number, rate: Number, eta_s: 0 });
  const perGpu = steps[0]!.per_gpu as Array<Record<string, unknown>>;
  t.equal(perGpu.length, 2, 'each emulated GPU');
  t.match(perGpu[1], { gpu: 1, loss: Number, acc1: Number, acc5: Number });
  const log = fs.readFileSync(path.join(dir, 'pt', 'pretrain-log.csv'), 'utf8').trim().split('\n');
  t.equal(String(steps[0]!.loss), log[1]!.split(',')[3], "the step's loss is the log's");
  t.ok(ev.some((e) => e.type === 'notice' && /epoch 0: mean loss/.test(String(e.message))), 'notices as events');
});
