// eval-downstream, eval-causal3dident and probe on fixtures in the original's layouts: the original's
// output lines, the JSON results with every CV score, and the errors.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { torchSave } from '../../src/io/torch-save';
import { torchvisionInitStateDict } from '../../src/nn/torchvision-init';
import { runCli } from '../helpers/cli';

const DATA = path.join(__dirname, '..', 'fixtures', 'datasets', 'data');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-down-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const ckptDir = path.join(dir, 'models'), results = path.join(dir, 'results');
const common = ['--ckpt-dir', ckptDir, '--data-root', DATA, '--results-dir', results, '--resize', '64', '--crop-size', '56', '--cv-folds', '2', '--quiet'];

t.before(async () => {
  fs.mkdirSync(ckptDir);
  await torchSave(path.join(ckptDir, 'net.pth.tar'), torchvisionInitStateDict('resnet18', 6));
});

t.test('classification (Flowers) and regression (300W, LSP)', async (t) => {
  for (const [ds, task] of [['flowers', 'classification'], ['300w', 'regression'], ['leeds_sports_pose', 'regression']] as const) {
    // 300W prints JSON (--json), the others the original's line.
    const json = ds === '300w';
    const r = await runCli(['eval-downstream', '--model', 'net', '--dataset', ds, ...common, ...(json ? ['--json'] : [])]);
    t.equal(r.code, 0, r.stderr);
    const j = JSON.parse(fs.readFileSync(path.join(results, `net_${ds}_downstream.json`), 'utf8'));
    if (json) {
      t.same(JSON.parse(r.stdout), { kind: 'downstream', model: 'net', dataset: ds, metric: j.metric, testScore: j.probe.testScore, C: j.probe.chosenC,
        file: path.join(results, `net_${ds}_downstream.json`) }, `${ds}: --json, one line`);
    } else {
      t.match(r.stdout, new RegExp(`^net on ${ds}: -?\\d+\\.\\d\\d\\n$`), `${ds}: the original's line`);
    }
    t.equal(j.task, task);
    t.equal(j.probe.Cs.length, 45, 'the 45-value C grid');
    t.equal(j.probe.cvScores.length, 45);
    t.equal(j.probe.cvScores[0].length, 2, 'one score per fold');
    t.equal(j.probe.chosenC, j.probe.Cs[j.probe.bestIndex]);
    t.match(j.models[0].sha256, /^[0-9a-f]{64}$/);
    t.same([j.precision, j.activations], ['fp32', 'float32'], 'the arithmetic is recorded');
    // The long-format CSV beside it: every CV score, then the test score at the chosen C.
    const csv = fs.readFileSync(path.join(results, `net_${ds}_downstream.csv`), 'utf8').trim().split('\n').map((l) => l.split(','));
    t.same(csv[0], ['model', 'dataset', 'metric', 'C', 'fold', 'value']);
    t.equal(csv.length, 1 + 45 * 2 + 1, `${ds}: 45 Cs x 2 folds + the test row`);
    t.same(csv[1], ['net', ds, j.metric, String(j.probe.Cs[0]), '0', String(j.probe.cvScores[0][0])]);
    t.same(csv[csv.length - 1], ['net', ds, j.metric, String(j.probe.chosenC), 'test', String(j.probe.testScore)]);
  }
});

t.test('checksums and errors', async (t) => {
  let r = await runCli(['eval-downstream', '--model', 'net', '--dataset', 'cifar10', ...common]);
  t.equal(r.code, 1);
  t.match(r.stderr, /ERR_DATASET_LAYOUT.*MD5.*--no-verify-checksums/);
  r = await runCli(['eval-downstream', '--model', 'net', '--dataset', 'imagenet', ...common]);
  t.equal(r.code, 1);
  t.match(r.stderr, /imagenet/);
  r = await runCli(['eval-downstream', '--model', 'net', '--dataset', 'flowers', ...common.slice(0, 2), '--data-root', path.join(dir, 'nowhere'), '--quiet']);
  t.equal(r.code, 1);
  t.match(r.stderr, /ERR_DATASET_LAYOUT/);
  for (const cmd of [['eval-downstream', '--dataset', 'flowers'], ['eval-causal3dident', '--target', '0']]) {
    r = await runCli([...cmd, '--model', 'net', ...common, '--device', 'cpu', '--precision', 'bf16']);
    t.equal(r.code, 1, `${cmd[0]}: bf16 on the CPU`);
    t.match(r.stderr, /ERR_DEVICE_UNAVAILABLE: --precision bf16 needs a CUDA device/);
    r = await runCli([...cmd, '--model', 'net', ...common, '--device', 'cpu', '--activations', 'bfloat16']);
    t.equal(r.code, 2, `${cmd[0]}: bfloat16 activations without bf16`);
    t.match(r.stderr, /ERR_USAGE: --activations bfloat16 needs --precision bf16/);
  }
});

t.test('Causal3DIdent', async (t) => {
  const r = await runCli(['eval-causal3dident', '--model', 'net', '--target', '0', '--batch-size', '4', ...common]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^-?\d+\.\d+(e[-+]\d+)?\n$/, 'print(score)');
  const j = JSON.parse(fs.readFileSync(path.join(results, 'net_backbone_causal3dident_0.json'), 'utf8'));
  const js = await runCli(['eval-causal3dident', '--model', 'net', '--target', '0', '--batch-size', '4', ...common, '--json']);
  t.equal(js.code, 0, js.stderr);
  t.same(JSON.parse(js.stdout), { kind: 'causal3dident', model: 'net', target: '0', testScore: j.probe.testScore, alpha: j.probe.chosenAlpha,
    gamma: j.probe.chosenGamma, file: path.join(results, 'net_backbone_causal3dident_0.json') }, '--json: one line, the same score');
  t.equal(j.probe.alphas.length, 5);
  t.equal(j.probe.gammas.length, 8);
  t.equal(j.probe.cvScores.length, 40);
  const csv = fs.readFileSync(path.join(results, 'net_backbone_causal3dident_0.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
  t.same(csv[0], ['model', 'target', 'alpha', 'gamma', 'fold', 'value']);
  t.equal(csv.length, 1 + 40 * j.probe.cvScores[0].length + 1, '5 alphas x 8 gammas x the folds + the test row');
  t.same(csv[1 + j.probe.cvScores[0].length], ['net', '0', String(j.probe.alphas[0]), String(j.probe.gammas[1]), '0', String(j.probe.cvScores[1][0])],
    'alpha outer, gamma inner');
  t.same(csv[csv.length - 1], ['net', '0', String(j.probe.chosenAlpha), String(j.probe.chosenGamma), 'test', String(j.probe.testScore)]);
  t.same([j.precision, j.activations], ['fp32', 'float32'], 'the arithmetic is recorded');
});
