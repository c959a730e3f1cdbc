// torch.optim.SGD (src/optim/sgd.ts): bit for bit against PyTorch 1.13's own three steps
// (test/fixtures/backward/layers.json, make_layer_fixtures.py) and against an exact float32
// reference written here (each fused multiply-add rounded once, emulated exactly in float64), on the
// vectorised body, the tails and the thread split; the SGD class's bookkeeping; and its errors.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { cudaInfo } from '../../src/device';
import { native, packageRoot } from '../../src/native';
import * as ops from '../../src/ops';
import { SGD, SgdOptions, sgdStep } from '../../src/optim/sgd';
import { tensor, Tensor } from '../../src/tensor';
import { randomArray } from '../helpers/reference';
import { bitsEqual, firstDiff } from '../helpers/bits';
import { SGD_VARIANTS } from '../helpers/sgd-variants';

const T = (a: Float32Array | Float64Array, shape?: readonly number[]): Tensor => tensor(a, shape ?? [a.length]);
const read = (x: Tensor): Float32Array => x.toFloat32Array();


// ---------------------------------------------------------------- exact float32 reference

const fb = new Float32Array(1), ib = new Int32Array(fb.buffer);
/** The float32 next to float32 v in the direction of dir (v finite). */
function nextFloat(v: number, dir: number): number {
  if (v === 0) return dir > 0 ? 2 ** -149 : -(2 ** -149);
  fb[0] = v;
  ib[0]! += (v > 0) === (dir > 0) ? 1 : -1;
  return fb[0]!;
}

/**
 * fmaf(a, b, c) for float32 a, b, c, exactly: a * b is exact in float64 (24 + 24 bits), the sum is
 * rounded to float64 with its error kept (TwoSum), and the one case where rounding that float64 to
 * float32 can differ from rounding the exact value (it lands exactly on a float32 midpoint) is
 * resolved by the sign of the error.
 */
function fmaf(a: number, b: number, c: number): number {
  const p = a * b, s = p + c;
  const bb = s - p, err = (p - (s - bb)) + (c - bb);
  const r = Math.fround(s);
  if (err === 0 || r === s || !Number.isFinite(s)) return r;
  const other = nextFloat(r, s > r ? 1 : -1);
  if (s === (r + other) / 2) return err > 0 ? Math.max(r, other) : Math.min(r, other);
  return r;
}

/** _single_tensor_sgd of torch 1.13 with PyTorch's float32 roundings (see native/ops/sgd.h). */
function sgdRef(p: Float32Array, g: Float32Array, buf: Float32Array | undefined, o: Required<SgdOptions>) {
  const wd = Math.fround(o.weightDecay), mom = Math.fround(o.momentum), damp1 = Math.fround(1 - o.dampening);
  const negLr = Math.fround(-o.lr);
  const param = new Float32Array(p.length);
  const buffer = o.momentum !== 0 ? new Float32Array(p.length) : undefined;
  for (let i = 0; i < p.length; i++) {
    let d = o.weightDecay !== 0 ? fmaf(p[i]!, wd, g[i]!) : g[i]!;
    if (buffer) {
      const b = buf === undefined ? d : fmaf(d, damp1, Math.fround(buf[i]! * mom));
      buffer[i] = b;
      d = o.nesterov ? fmaf(b, mom, d) : b;
    }
    param[i] = fmaf(d, negLr, p[i]!);
  }
  return { param, buffer };
}

const full = (o: SgdOptions): Required<SgdOptions> => ({
  lr: o.lr, momentum: o.momentum ?? 0, weightDecay: o.weightDecay ?? 0, dampening: o.dampening ?? 0, nesterov: o.nesterov ?? false,
});

const VARIANTS: { name: string; o: SgdOptions }[] = [...SGD_VARIANTS, { name: 'lr 0', o: { lr: 0, momentum: 0.5, weightDecay: 0.5 } }];

// ---------------------------------------------------------------- fixture

type Num = number | string;
const F = (a: Num[]): Float32Array => Float32Array.from(a, (v) => typeof v === 'number' ? v : Number(v));
interface SgdFixture {
  name: string; options: Required<SgdOptions>; param: Num[]; grads: Num[][]; params: Num[][]; buffers: (Num[] | null)[];
}
const FIX = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'backward', 'layers.json'), 'utf8')) as {
  torch: string; sgd: SgdFixture[];
};

t.test(`three steps of torch ${FIX.torch}'s SGD, bit for bit`, async (t) => {
  for (const f of FIX.sgd) {
    // sgdStep chained by hand.
    let p = T(F(f.param));
    let buf: Tensor | undefined;
    // The SGD class on the same numbers.
    const opt = new SGD(f.options);
    let params = new Map([['w', T(F(f.param))]]);
    for (let s = 0; s < 3; s++) {
      const g = T(F(f.grads[s]!));
      const r = sgdStep(p, g, buf, f.options);
      const want = F(f.params[s]!);
      t.ok(bitsEqual(read(r.param), want), `${f.name}, step ${s + 1}: param (${firstDiff(read(r.param), want)})`);
      const wantBuf = f.buffers[s];
      if (wantBuf) {
        t.ok(r.buffer && bitsEqual(read(r.buffer), F(wantBuf)), `${f.name}, step ${s + 1}: momentum buffer`);
      } else {
        t.equal(r.buffer, undefined, `${f.name}, step ${s + 1}: no buffer without momentum`);
      }
      p.dispose();
      buf?.dispose();
      p = r.param;
      buf = r.buffer;
      const next = opt.step(params, new Map([['w', g]]));
      t.ok(bitsEqual(read(next.get('w')!), want), `${f.name}, step ${s + 1}: the SGD class gives the same bits`);
      params.get('w')!.dispose();
      params = next;
    }
    opt.dispose();
  }
});

t.test('sgdStep against the exact float32 reference', async (t) => {
  // 1, 7: tail only; 16, 17, 33: vector body and tails; 100003: split across threads.
  for (const n of [1, 7, 16, 17, 33, 1000, 100_003]) {
    VARIANTS.forEach((v, vi) => {
      const seed = n * 10 + vi;
      let p = randomArray(n, seed), buf: Float32Array | undefined;
      let pt = T(p), bt: Tensor | undefined;
      for (let s = 0; s < 3; s++) {
        const g = randomArray(n, seed + 100 * (s + 1), 0.5);
        const ref = sgdRef(p, g, buf, full(v.o));
        const before = read(pt);
        const r = sgdStep(pt, T(g), bt, v.o);
        const got = read(r.param);
        const okParam = bitsEqual(got, ref.param);
        const okBuf = ref.buffer ? r.buffer !== undefined && bitsEqual(read(r.buffer), ref.buffer) : r.buffer === undefined;
        if (!okParam || !okBuf || s === 2) {
          t.ok(okParam && okBuf, `${v.name}, n = ${n}, step ${s + 1}: param and buffer bit for bit${okParam ? '' : ` (${firstDiff(got, ref.param)})`}`);
        }
        if (!bitsEqual(read(pt), before) || s === 2) t.ok(bitsEqual(read(pt), before), 'the parameter passed in is untouched');
        p = ref.param;
        buf = ref.buffer;
        pt = r.param;
        bt = r.buffer;
      }
    });
  }
  t.test('the exact fma emulation itself', async (t) => {
    // (1 + 2^-12)^2 - 1 = 2^-11 + 2^-24: fused, the 2^-24 survives; rounding a*a first loses it.
    const a = 1 + 2 ** -12;
    t.equal(fmaf(a, a, -1), 2 ** -11 + 2 ** -24, 'a*a - 1 keeps the low product bits');
    t.equal(Math.fround(a * a) - 1, 2 ** -11, '(unfused, they are lost)');
    // A float64 sum on a float32 midpoint, with the error below it: must round up, not to even.
    t.equal(fmaf(1, 1, 2 ** -24 + 2 ** -60), Math.fround(1 + 2 ** -23), 'midpoint resolved by the error sign');
    t.equal(fmaf(1, 1, 2 ** -24), 1, 'an exact midpoint rounds to even');
  });
});

t.test('SGD: buffers, lr schedules, skipped parameters, all-or-nothing steps', async (t) => {
  const o: SgdOptions = { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 };
  const opt = new SGD(o);
  t.equal(opt.lr, 0.1);
  const a = T(randomArray(10, 1), [2, 5]), b = T(randomArray(3, 2));
  const ga = T(randomArray(10, 3), [2, 5]), gb = T(randomArray(3, 4));
  const s1 = opt.step(new Map([['a', a], ['b', b]]), new Map([['a', ga], ['b', gb]]));
  t.same([...s1.keys()], ['a', 'b']);
  t.same(s1.get('a')!.shape, [2, 5], 'shapes kept');
  const buf1 = opt.momentumBuffers().get('a')!;
  t.ok(bitsEqual(read(buf1), read(sgdStep(a, ga, undefined, o).buffer!)), 'first buffer = d');
  t.ok(!a.disposed && !b.disposed, 'the parameters passed in are not disposed');
  // A schedule changes lr between steps.
  const manual = sgdStep(s1.get('a')!, ga, buf1, { ...o, lr: 0.05 });
  opt.lr = 0.05;
  const s2 = opt.step(s1, new Map([['a', ga]]));
  t.same([...s2.keys()], ['a', 'b'], 'every parameter is in the result');
  t.equal(s2.get('b'), s1.get('b'), 'a parameter without a gradient is skipped (as PyTorch does): the same tensor comes back');
  t.not(s2.get('a'), s1.get('a'), 'a stepped parameter is a new tensor');
  t.ok(bitsEqual(read(opt.momentumBuffers().get('a')!), read(manual.buffer!)), 'the buffer is updated');
  t.ok(bitsEqual(read(s2.get('a')!), read(manual.param)), 'the new lr is used');
  t.ok(buf1.disposed, 'the replaced buffer is disposed');
  t.ok(!opt.momentumBuffers().get('b')!.disposed, "the skipped parameter's buffer is kept");
  // All or nothing: the second parameter's gradient has the wrong shape.
  const before = new Map(opt.momentumBuffers());
  t.throws(() => opt.step(new Map([['a', s2.get('a')!], ['b', s1.get('b')!]]), new Map([['a', ga], ['b', T(randomArray(4, 5))]])),
    { code: 'ERR_SHAPE_MISMATCH', field: 'b' }, 'a failing parameter is named');
  for (const [k, v] of before) t.ok(opt.momentumBuffers().get(k) === v && !v.disposed, `buffer '${k}' unchanged by the failed step`);
  t.ok(!s2.get('a')!.disposed && !s1.get('b')!.disposed, 'the parameters passed in survive the failed step');
  const partial = opt.step(new Map([['a', s2.get('a')!], ['b', s1.get('b')!]]), new Map([['b', gb]]));
  t.equal(partial.get('a'), s2.get('a'), 'skipped, returned as is');
  t.throws(() => opt.step(new Map([['a', s2.get('a')!], ['b', partial.get('b')!]]), new Map([['b', T(randomArray(4, 5))]])),
    { code: 'ERR_SHAPE_MISMATCH' }, 'a failed step with a skipped parameter');
  t.ok(!s2.get('a')!.disposed, 'does not dispose the skipped parameter');
  t.throws(() => opt.step(s1, new Map([['c', ga]])), { code: 'ERR_INVALID_ARGUMENT' }, 'a gradient for an unknown name');
  const bufs = [...opt.momentumBuffers().values()];
  opt.dispose();
  t.ok(bufs.every((x) => x.disposed), 'dispose() frees the buffers');
  t.equal(opt.momentumBuffers().size, 0);
  t.throws(() => opt.step(s1, new Map()), { code: 'ERR_INVALID_ARGUMENT' }, 'no steps after dispose');
  // Without momentum there are no buffers.
  const plain = new SGD({ lr: 0.1 });
  plain.step(new Map([['a', a]]), new Map([['a', ga]]));
  t.equal(plain.momentumBuffers().size, 0, 'no buffers without momentum');
});

t.test('the same bits with 1 and 2 threads, and on the portable (non-AVX2) path', async (t) => {
  const n = 200_003;
  const p = randomArray(n, 11), g = randomArray(n, 12), b = randomArray(n, 13);
  const o = { lr: 0.03, momentum: 0.9, weightDecay: 1e-4, nesterov: true };
  const threads = native().info().threads;
  let one: Float32Array, two: Float32Array;
  try {
    ops.setNumThreads(1);
    one = read(sgdStep(T(p), T(g), T(b), o).param);
    ops.setNumThreads(2);
    two = read(sgdStep(T(p), T(g), T(b), o).param);
  } finally {
    ops.setNumThreads(threads);
  }
  t.ok(bitsEqual(one, two), '1 and 2 threads');
  // A child process with the ISA capped to generic before the addon loads (std::fma in software or
  // glibc's dispatch instead of the AVX2 loop).
  const addon = process.env.SSL_INV_ADDON ?? path.join(packageRoot, 'build', 'Release', 'ssl_inv.node');
  const script = `
    const a = require(${JSON.stringify(addon)});
    const rd = (f) => new Float32Array(require('fs').readFileSync(f).buffer.slice(0));
    const mk = (x) => a.fromTypedArray(x, [x.length]);
    const [p, g, b] = process.argv.slice(1, 4).map(rd);
    const [out] = a.sgdStep(mk(p), mk(g), mk(b), ${JSON.stringify(o)});
    process.stdout.write(a.info().isa + ' ' + Buffer.from(out.read().buffer).toString('base64'));`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgd-'));
  const files = [p, g, b].map((x, i) => { const f = path.join(dir, `${i}.bin`); fs.writeFileSync(f, x); return f; });
  const r = spawnSync(process.execPath, ['-e', script, ...files], { env: { ...process.env, SSL_INV_ISA: 'generic' }, encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  t.equal(r.status, 0, `the child ran${r.status === 0 ? '' : `: ${r.stderr}`}`);
  const [isa, data] = r.stdout.split(' ');
  t.equal(isa, 'generic', 'the child runs the portable path');
  const generic = new Float32Array(new Uint8Array(Buffer.from(data ?? '', 'base64')).buffer);
  t.ok(bitsEqual(generic, one), `generic and ${native().info().isa} give the same bits`);
});

t.test('errors', async (t) => {
  const p = T(randomArray(6, 1)), g = T(randomArray(6, 2));
  for (const [o, what] of [
    [{ lr: -0.1 }, 'lr < 0'], [{ lr: NaN }, 'lr NaN'], [{ lr: Infinity }, 'lr infinite'],
    [{ lr: 0.1, momentum: -0.9 }, 'momentum < 0'], [{ lr: 0.1, weightDecay: -1 }, 'weightDecay < 0'],
    [{ lr: 0.1, dampening: NaN }, 'dampening NaN'],
    [{ lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }, 'nesterov with dampening'],
    [{ lr: 0.1, nesterov: true }, 'nesterov without momentum'],
    [{ lr: '0.1' }, 'lr a string'],
  ] as [SgdOptions, string][]) {
    t.throws(() => sgdStep(p, g, undefined, o), { code: 'ERR_INVALID_ARGUMENT' }, `sgdStep: ${what}`);
    t.throws(() => new SGD(o), { code: 'ERR_INVALID_ARGUMENT' }, `new SGD: ${what}`);
  }
  t.throws(() => sgdStep(p, T(randomArray(6, 2), [2, 3]), undefined, { lr: 0.1 }), { code: 'ERR_SHAPE_MISMATCH', message: /grad.*\[6\].*\[2, 3\]/ },
    'grad of another shape, named with both shapes');
  t.throws(() => sgdStep(p, g, T(randomArray(5, 3)), { lr: 0.1, momentum: 0.9 }), { code: 'ERR_SHAPE_MISMATCH', message: /buffer/ },
    'buffer of another shape');
  t.throws(() => sgdStep(p, g, T(randomArray(6, 3)), { lr: 0.1 }), { code: 'ERR_INVALID_ARGUMENT' }, 'a buffer without momentum');
  t.throws(() => sgdStep(T(new Float64Array(6)), g, undefined, { lr: 0.1 }), { code: 'ERR_DTYPE_MISMATCH' }, 'float64 param');
  t.throws(() => sgdStep(p, g, T(new Float64Array(6)), { lr: 0.1, momentum: 0.9 }), { code: 'ERR_DTYPE_MISMATCH' }, 'float64 buffer');
  // The binding checks the options itself too (the wrapper's checks are a first line).
  const raw = native() as unknown as { sgdStep(...a: unknown[]): unknown };
  t.throws(() => raw.sgdStep(p.handle, g.handle, undefined, { lr: -1 }), { code: 'ERR_INVALID_ARGUMENT' }, 'raw: lr < 0');
  t.throws(() => raw.sgdStep(p.handle, g.handle, undefined, {}), { code: 'ERR_INVALID_ARGUMENT' }, 'raw: lr missing');
  t.throws(() => raw.sgdStep(p.handle, g.handle, undefined, { lr: 0.1, nesterov: true }), { code: 'ERR_INVALID_ARGUMENT' },
    'raw: nesterov without momentum');
  t.throws(() => raw.sgdStep(p.handle, g.handle, undefined, { lr: 0.1, momentum: 'a' }), { code: 'ERR_INVALID_ARGUMENT' }, 'raw: momentum a string');
  t.throws(() => raw.sgdStep(p.handle, g.handle, undefined), { code: 'ERR_INVALID_ARGUMENT' }, 'raw: no options');
});

// Steps on a device against these CPU steps: test/backward/layers-device.test.ts.
t.test('CPU and CUDA tensors mixed in one step: ERR_DEVICE_UNAVAILABLE', { skip: cudaInfo().devices.some((d) => d.usable) ? false : 'no CUDA device' }, async (t) => {
  const p = T(randomArray(6, 1));
  t.throws(() => sgdStep(p.to('cuda'), p, undefined, { lr: 0.1 }), { code: 'ERR_DEVICE_UNAVAILABLE', message: /grad/ });
  t.throws(() => sgdStep(p, p.to('cuda'), undefined, { lr: 0.1 }), { code: 'ERR_DEVICE_UNAVAILABLE' }, 'any tensor argument');
});
