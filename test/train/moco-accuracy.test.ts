// ops.mocoLoss's ranks (queue logits above each positive logit) and mocoAccuracy, main_moco.py's
// Acc@1 / Acc@5 of the contrastive logits; and its row losses (each query's cross-entropy, from which
// a GPU's share of the loss is taken).
//
// Random case: against float64 logits, a rank must lie between the number of queue logits that are
// above the positive one by more than float32 rounding can move them and the number that are above
// it at all allowing for that rounding (the kernel computes float32 dot products, as PyTorch does).
// Exact case: values chosen so every logit is exact in float32, with one queue logit equal to the
// positive one (not counted) and known numbers above and below.
import t from 'tap';
import * as ops from '../../src/ops';
import { tensor } from '../../src/tensor';
import { check, mocoLossRef, randomArray } from '../helpers/reference';
import { cudaAvailable } from '../../src/device';

function unitRows(a: Float32Array, n: number, d: number): void {
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += a[i * d + j]! ** 2;
    for (let j = 0; j < d; j++) a[i * d + j] = a[i * d + j]! / Math.sqrt(s);
  }
}

t.test('ranks agree with float64 logits up to float32 rounding', async (t) => {
  // K spans several of the kernel's column blocks (4096), so counts are summed across blocks.
  const N = 12, D = 32, K = 9000, temp = 0.2;
  const q = randomArray(N * D, 51), kp = randomArray(N * D, 52), queue = randomArray(D * K, 53);
  // Unit rows and columns as in MoCo; queries of shrinking agreement with their positive key, so the
  // ranks spread from 0 up.
  for (let i = 0; i < N; i++) for (let j = 0; j < D; j++) kp[i * D + j] = q[i * D + j]! + (i / 3) * kp[i * D + j]!;
  unitRows(q, N, D);
  unitRows(kp, N, D);
  for (let c = 0; c < K; c++) {
    let s = 0;
    for (let r = 0; r < D; r++) s += queue[r * K + c]! ** 2;
    for (let r = 0; r < D; r++) queue[r * K + c] = queue[r * K + c]! / Math.sqrt(s);
  }
  const qt = tensor(q, [N, D]), kt = tensor(kp, [N, D]), qu = tensor(queue, [D, K]);
  const r = ops.mocoLoss(qt, kt, qu, temp, { ranks: true });
  t.equal(r.rank.dtype, 'int32');
  t.same(r.rank.shape, [N]);
  const rank = Array.from(r.rank.toArray() as Int32Array);
  const seen = new Set<number>();
  for (let i = 0; i < N; i++) {
    let pos = 0, posMag = 0;
    for (let c = 0; c < D; c++) { pos += q[i * D + c]! * kp[i * D + c]!; posMag += Math.abs(q[i * D + c]! * kp[i * D + c]!); }
    let lo = 0, hi = 0;
    for (let j = 0; j < K; j++) {
      let s = 0, mag = 0;
      for (let c = 0; c < D; c++) { s += q[i * D + c]! * queue[c * K + j]!; mag += Math.abs(q[i * D + c]! * queue[c * K + j]!); }
      // float32 dot products of D terms, then / T rounded: a few units of 2^-24 times the magnitudes.
      const tol = (D + 4) * 2 ** -24 * (mag + posMag + Math.abs(s) + Math.abs(pos));
      if (s - pos > tol) lo++;
      if (s - pos > -tol) hi++;
    }
    t.ok(rank[i]! >= lo && rank[i]! <= hi, `query ${i}: rank ${rank[i]} in [${lo}, ${hi}]`);
    seen.add(rank[i]!);
  }
  t.ok(seen.size >= 6, `the case spreads the ranks (${[...seen].join(', ')})`);
  const plain = ops.mocoLoss(qt, kt, qu, temp);
  t.same(Array.from(plain.loss.toFloat32Array()), Array.from(r.loss.toFloat32Array()), 'asking for ranks leaves the loss as it was');
  t.same(Array.from(plain.dq.toFloat32Array()), Array.from(r.dq.toFloat32Array()), 'and dq');
  t.equal(Object.keys(plain).includes('rank'), false, 'no ranks unless asked');
});

t.test('exact logits: ties with the positive do not count', async (t) => {
  // q_i = e_0; the positive key 0.5 e_0; queue columns x e_0 with x exact in float32.
  const N = 2, D = 4;
  const col = [0.75, 0.25, 0.5, 0.625, -0.5, 0.5, 1, 0.125];
  const K = col.length;
  const q = new Float32Array(N * D), kp = new Float32Array(N * D), queue = new Float32Array(D * K);
  q[0] = 1; kp[0] = 0.5;
  q[D] = 1; kp[D] = 0.875; // second query: its positive (0.875) is beaten by 1 only
  col.forEach((x, j) => { queue[j] = x; });
  const r = ops.mocoLoss(tensor(q, [N, D]), tensor(kp, [N, D]), tensor(queue, [D, K]), 0.25, { ranks: true });
  t.same(Array.from(r.rank.toArray() as Int32Array), [3, 1], '0.75, 0.625 and 1 beat 0.5 (the two 0.5s do not); only 1 beats 0.875');
  t.same(ops.mocoAccuracy([3, 1]), [0, 100], 'Acc@1 0 %, Acc@5 100 %');
});

t.test('mocoAccuracy is main_moco.py accuracy() in percent', async (t) => {
  t.same(ops.mocoAccuracy([0, 1, 4, 5, 0, 7, 2, 0]), [37.5, 75]);
  t.same(ops.mocoAccuracy([0, 3], [1, 2, 4]), [50, 50, 100]);
  t.same(ops.mocoAccuracy([]), [0, 0]);
});

t.test('row losses: each query\'s cross-entropy against float64, their mean the loss', async (t) => {
  // Several column blocks (4096), a sharp soft-max so each row's maximum moves between blocks, and
  // MoCo-like unit rows with the positive close to its query.
  const N = 6, D = 24, K = 9000, temp = 0.07;
  const q = randomArray(N * D, 61), kp = randomArray(N * D, 62), queue = randomArray(D * K, 63);
  for (let j = 0; j < N * D; j++) kp[j] = q[j]! + 0.2 * (j % 5) * kp[j]!;
  unitRows(q, N, D);
  unitRows(kp, N, D);
  const qt = tensor(q, [N, D]), kt = tensor(kp, [N, D]), qu = tensor(queue, [D, K]);
  const r = ops.mocoLoss(qt, kt, qu, temp, { rowLosses: true });
  t.same(r.rowLoss.shape, [N]);
  t.equal(r.rowLoss.dtype, 'float32');
  const rows = r.rowLoss.toFloat32Array();
  const ref = mocoLossRef(q, kp, queue, N, D, K, temp);
  const c = check(rows, ref.rowLoss, 1e-5, 1e-7, ref.rowLossMag);
  t.ok(c.ok, `rows within 1e-5 of float64 (worst ${c.worst.toFixed(3)} of the bound)${c.firstBad ? ' ' + c.firstBad : ''}`);
  t.ok(new Set(rows).size === N, 'the rows differ (the case tests something per row)');
  const mean = rows.reduce((a, b) => a + b, 0) / N;
  t.ok(Math.abs(mean - r.loss.toFloat32Array()[0]!) <= 1e-6 * Math.abs(mean), `their mean ${mean} is the loss ${r.loss.toFloat32Array()[0]}`);
  const plain = ops.mocoLoss(qt, kt, qu, temp);
  t.same(Array.from(r.loss.toFloat32Array()), Array.from(plain.loss.toFloat32Array()), 'asking for rows leaves the loss as it was');
  t.same(Array.from(r.dq.toFloat32Array()), Array.from(plain.dq.toFloat32Array()), 'and dq');
  const both = ops.mocoLoss(qt, kt, qu, temp, { ranks: true, rowLosses: true });
  t.same(Array.from(both.rowLoss.toFloat32Array()), Array.from(rows), 'with ranks too: the same rows');
  t.same(both.rank.shape, [N], 'and the ranks');
});

t.test('ranks and row losses on a CUDA device: the CPU op\'s, the loss and dq unchanged by asking', { skip: cudaAvailable() ? false : 'no CUDA device' }, async (t) => {
  // K spans several of the device kernel's 2048-key blocks and a partial one; N a partial row block.
  const N = 13, D = 32, K = 5000, temp = 0.2;
  const q = randomArray(N * D, 71), kp = randomArray(N * D, 72), queue = randomArray(D * K, 73);
  for (let i = 0; i < N; i++) for (let j = 0; j < D; j++) kp[i * D + j] = q[i * D + j]! + (i / 4) * kp[i * D + j]!;
  unitRows(q, N, D);
  unitRows(kp, N, D);
  const host = [tensor(q, [N, D]), tensor(kp, [N, D]), tensor(queue, [D, K])] as const;
  const dev = host.map((x) => x.to('cuda')) as unknown as typeof host;
  const cpu = ops.mocoLoss(host[0], host[1], host[2], temp, { ranks: true, rowLosses: true });
  const gpu = ops.mocoLoss(dev[0], dev[1], dev[2], temp, { ranks: true, rowLosses: true });
  t.equal(gpu.rank.device, dev[0].device, 'the ranks are on the device');
  const rc = Array.from(cpu.rank.toArray() as Int32Array), rg = Array.from(gpu.rank.toArray() as Int32Array);
  t.ok(new Set(rc).size >= N / 2, `the ranks spread (${rc.join(' ')})`);
  // The two backends sum the dot products in different orders; on these inputs no queue logit lies
  // within rounding of a positive one, so the counts are equal.
  t.same(rg, rc, 'ranks equal to the CPU op\'s');
  // Against float64 with the magnitude-based bound of the CPU test above (logit rounding is scaled
  // by sum |q||k| / T).
  const ref = mocoLossRef(q, kp, queue, N, D, K, temp);
  const c = check(gpu.rowLoss.toFloat32Array(), ref.rowLoss, 1e-5, 1e-7, ref.rowLossMag);
  t.ok(c.ok, `row losses within 1e-5 of float64 (worst ${c.worst.toFixed(3)} of the bound${c.firstBad ? `, ${c.firstBad}` : ''})`);
  const plain = ops.mocoLoss(dev[0], dev[1], dev[2], temp);
  t.same(Array.from(gpu.loss.toFloat32Array()), Array.from(plain.loss.toFloat32Array()), 'asking for them leaves the loss as it was');
  t.same(Array.from(gpu.dq.toFloat32Array()), Array.from(plain.dq.toFloat32Array()), 'and dq');
  let s = 0;
  for (const v of gpu.rowLoss.toFloat32Array()) s += v;
  t.ok(Math.abs(Math.fround(s / N) - gpu.loss.toFloat32Array()[0]!) <= 1e-6 * Math.abs(s / N), 'the loss is the mean of the row losses');
  for (const x of [...host, ...dev, cpu.loss, cpu.dq, cpu.rank, cpu.rowLoss, gpu.loss, gpu.dq, gpu.rank, gpu.rowLoss, plain.loss, plain.dq]) x.dispose();
});
