// The probes' device option: a CUDA device that is not there is refused with ERR_DEVICE_UNAVAILABLE
// (never a silent fall-back to the CPU); on a machine with a GPU the logistic objective agrees with
// the CPU's to rounding and the device memory the probes use is returned. The searches' fidelity on
// each device is in search.test.ts.
import t from 'tap';
import { cudaAvailable, deviceMemoryStats } from '../../src/device';
import { classificationProbe, kernelRidgeProbe, regressionProbe } from '../../src/probes/cv';
import { logisticLossGradBatch } from '../../src/probes/logistic';
import { tensor } from '../../src/tensor';
import { makeClassification, makeRegression } from './data';

const g = makeClassification(5, 120, 7, 3, 1.0);
const x = { data: g.X.slice(0, 90 * 7), rows: 90, cols: 7 }, xt = { data: g.X.slice(90 * 7), rows: 30, cols: 7 };
const yr = makeRegression(6, 120, 7, 2);
const xr = { data: yr.X.slice(0, 90 * 7), rows: 90, cols: 7 }, xrt = { data: yr.X.slice(90 * 7), rows: 30, cols: 7 };

t.test('an unavailable or malformed device is refused', { skip: cudaAvailable() ? 'this machine has a GPU' : false }, async (t) => {
  t.throws(() => classificationProbe(x, g.y.slice(0, 90), xt, g.y.slice(90), { C: 1, device: 'cuda' }), { code: 'ERR_DEVICE_UNAVAILABLE' });
  t.throws(() => regressionProbe(xr, yr.Y.slice(0, 180), xrt, yr.Y.slice(180), { C: 1, device: 'cuda:0' }), { code: 'ERR_DEVICE_UNAVAILABLE' });
  t.throws(() => kernelRidgeProbe(xr, yr.Y.slice(0, 180), xrt, yr.Y.slice(180), { alphas: [1], gammas: [0.1], folds: 2, device: 'cuda' }),
    { code: 'ERR_DEVICE_UNAVAILABLE' });
});

t.test('a malformed device name is an argument error', async (t) => {
  t.throws(() => classificationProbe(x, g.y.slice(0, 90), xt, g.y.slice(90), { C: 1, device: 'gpu' }), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('on a GPU: the batched logistic objective matches the CPU\'s; device memory is returned', { skip: cudaAvailable() ? false : 'no CUDA device' }, async (t) => {
  const n = 90, d = 7, K = 3;
  const X = tensor(g.X.slice(0, n * d), [n, d]);
  const Xd = X.to('cuda:0');
  const ys = [Int32Array.from(g.y.slice(0, n)), Int32Array.from(g.y.slice(0, n), (v, i) => (i % 5 === 0 ? -1 : v))];
  const ws = ys.map((_, p) => Float64Array.from({ length: (d + 1) * K }, (__, j) => Math.sin(j + p)));
  const cpu = logisticLossGradBatch(X, K, ys, [1, 0.01], ws);
  const gpu = logisticLossGradBatch(Xd, K, ys, [1, 0.01], ws);
  for (let p = 0; p < 2; p++) {
    t.ok(Math.abs(gpu.f[p]! - cpu.f[p]!) <= 1e-12 * Math.abs(cpu.f[p]!), `problem ${p}: f ${gpu.f[p]} vs ${cpu.f[p]}`);
    const worst = Math.max(...Array.from(cpu.g[p]!, (v, j) => Math.abs(v - gpu.g[p]![j]!) / (1e-12 + Math.abs(v))));
    t.ok(worst <= 1e-10, `problem ${p}: gradient within 1e-10 relative (worst ${worst.toExponential(2)})`);
  }
  X.dispose();
  Xd.dispose();
  const before = deviceMemoryStats('cuda:0').inUseBytes;
  classificationProbe(x, g.y.slice(0, 90), xt, g.y.slice(90), { Cs: [0.1, 1], folds: 3, device: 'cuda:0' });
  regressionProbe(xr, yr.Y.slice(0, 180), xrt, yr.Y.slice(180), { Cs: [0.1, 1], folds: 3, device: 'cuda:0' });
  t.equal(deviceMemoryStats('cuda:0').inUseBytes, before, 'every device tensor of the searches is freed');
});
