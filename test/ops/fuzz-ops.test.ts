// The ops against random shapes and geometry (test/helpers/fuzz.ts's seeded generator): mostly
// valid convolutions, pools and batch norms of odd sizes (kernels larger than the stride or smaller,
// padding wider than the kernel, 1-pixel maps), the rest with mismatched shapes, zero or negative
// sizes, NaN and huge numbers. Each call must return or throw an SslInvError; a TypeError, or a
// crash of the process (a native fault ends this file), fails. The results themselves are checked
// by the op tables; this is about the arguments nobody wrote a case for. It found one: wgrad with a
// stride longer than the kernel and wide padding divided by zero (SIGFPE) when no window met the
// image along an axis. With a CUDA device (or the emulated one, test/cuda-emu/addon-emu.test.ts) the
// forward ops run there too, in each precision and kernel choice.
import t, { Test } from 'tap';
import * as ops from '../../src/ops';
import * as bw from '../../src/backward';
import { Tensor, tensor, zeros } from '../../src/tensor';
import { isSslInvError } from '../../src/errors';
import { cudaAvailable } from '../../src/device';
import { FuzzRng } from '../helpers/fuzz';

const CPU_CASES = Number(process.env.SSL_INV_FUZZ_OPS ?? 1500);
const DEVICE_CASES = Math.round(CPU_CASES / 3);

function generator(seed: number) {
  const rng = new FuzzRng(seed);
  const rnd = () => rng.next() / 4294967296;
  const pick = <T>(a: readonly T[]): T => a[rng.below(a.length)]!;
  return { rnd, pick };
}

const POS = [1, 1, 2, 2, 3, 3, 4, 5, 7, 8, 9, 13, 17];
const SMALL = [0, 1, 1, 2, 3, 4, 5, 7, 9];
const STRIDE = [1, 1, 2, 2, 3, 4, 5];
const PAD = [0, 0, 1, 1, 2, 3, 4, 6];
const ODD = [-1, 0, 1, 2, 3, 100, 2 ** 31 - 1, NaN, 1.5];

type Case = [string, () => unknown];

/** Case makers; `dev` places tensors (the CPU, or the CUDA device). */
function makers(g: ReturnType<typeof generator>, dev: (t: Tensor) => Tensor) {
  const { rnd, pick } = g;
  const rt = (shape: number[]) => dev(tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rnd() - 0.5), shape));
  // Mostly a consistent geometry (the output size it implies), sometimes anything.
  const geo = () => {
    const valid = rnd() < 0.75;
    const p = { n: pick(valid ? POS : SMALL), h: pick(valid ? POS : SMALL), w: pick(valid ? POS : SMALL), c: pick(valid ? POS : SMALL),
      k: pick(valid ? POS : SMALL), r: pick(valid ? POS : SMALL), s: pick(valid ? STRIDE : ODD), pad: pick(valid ? PAD : ODD) };
    const out = (x: number) => { const o = Math.floor((x + 2 * p.pad - p.r) / p.s) + 1; return rnd() < 0.85 && o >= 0 && o < 64 ? o : pick(SMALL); };
    return { ...p, ph: out(p.h), pw: out(p.w), valid };
  };
  const conv = (p: ReturnType<typeof geo>): ops.ConvGeometry =>
    ({ outChannels: p.k, kernel: [p.r, p.r], stride: [p.s, p.s], padding: [p.pad, p.pad] });
  const d = (p: ReturnType<typeof geo>) => `n${p.n} ${p.h}x${p.w}x${p.c} -> ${p.ph}x${p.pw}x${p.k}, ${p.r}x${p.r}/${p.s} pad ${p.pad}`;
  const forward: Record<string, () => Case> = {
    conv2d: () => { const p = geo(); const precision = pick(['fp32', 'fp32', 'tf32', 'bf16'] as const);
      return [`conv2d ${d(p)} ${precision}`, () => ops.conv2d(rt([p.n, p.h, p.w, p.c]), ops.packConvWeights(rt([p.k, p.c, p.r, p.r])), conv(p), {
        bias: rnd() < 0.4 ? rt([p.k]) : undefined, residual: rnd() < 0.3 ? rt([p.n, p.ph, p.pw, p.k]) : undefined, relu: rnd() < 0.5, precision,
      }).toFloat32Array()]; },
    maxPool2d: () => { const p = geo();
      return [`maxPool2d ${d(p)}`, () => ops.maxPool2d(rt([p.n, p.h, p.w, p.c]), { kernel: [p.r, p.r], stride: [p.s, p.s], padding: [p.pad, p.pad] }).toFloat32Array()]; },
    globalAvgPool: () => { const sh = [pick(SMALL), pick(SMALL), pick(SMALL), pick(SMALL)]; return [`globalAvgPool [${sh}]`, () => ops.globalAvgPool(rt(sh)).toFloat32Array()]; },
    matmul: () => { const [m, k, n] = [pick(POS), pick(POS), pick(POS)]; const k2 = rnd() < 0.8 ? k : pick(SMALL);
      return [`matmul [${m},${k}] x [${k2},${n}]`, () => ops.matmul(rt([m, k]), rt([k2, n])).toFloat32Array()]; },
    mocoLoss: () => { const [n, dim, k] = [pick(POS), pick(POS), pick(POS)]; const d2 = rnd() < 0.8 ? dim : pick(SMALL);
      return [`mocoLoss q[${n},${dim}] queue[${d2},${k}]`, () => ops.mocoLoss(rt([n, dim]), rt([n, dim]), rt([d2, k]), pick([0.07, 0.2, 0, -1, NaN])).loss.toFloat32Array()]; },
    layout: () => { const sh = [pick(SMALL), pick(SMALL), pick(SMALL), pick(SMALL)]; return [`layout [${sh}]`, () => ops.nhwcToNchw(ops.nchwToNhwc(rt(sh))).toFloat32Array()]; },
  };
  // The training ops (CPU only).
  const backward: Record<string, () => Case> = {
    dgrad: () => { const p = geo(); const epi = rnd() < 0.4;
      return [`dgrad${epi ? ' with epilogue' : ''} ${d(p)}`, () => epi
        ? bw.conv2dBackwardDataEpilogue(rt([p.n, p.ph, p.pw, p.k]), rt([p.k, p.c, p.r, p.r]), conv(p), [p.h, p.w],
          { residual: rnd() < 0.5 ? rt([p.n, p.h, p.w, p.c]) : undefined, reluOutput: rnd() < 0.5 ? rt([p.n, p.h, p.w, p.c]) : undefined })
        : bw.conv2dBackwardData(rt([p.n, p.ph, p.pw, p.k]), rt([p.k, p.c, p.r, p.r]), conv(p), [p.h, p.w])]; },
    wgrad: () => { const p = geo(); return [`wgrad ${d(p)}`, () => bw.conv2dBackwardWeight(rt([p.n, p.h, p.w, p.c]), rt([p.n, p.ph, p.pw, p.k]), conv(p))]; },
    maxPool2dBackward: () => { const p = geo();
      return [`maxPool2dBackward ${d(p)}`, () => bw.maxPool2dBackward(rt([p.n, p.ph, p.pw, p.c]), rt([p.n, p.h, p.w, p.c]), { kernel: [p.r, p.r], stride: [p.s, p.s], padding: [p.pad, p.pad] })]; },
    batchNormTrain: () => { const [n, h, w, c] = [pick(SMALL), pick(SMALL), pick(SMALL), pick(POS)]; const groups = pick([1, 1, 2, 3, 0, -1, NaN]);
      return [`batchNormTrain [${n},${h},${w},${c}] groups ${groups}`, () => {
        const r = bw.batchNormTrain(rt([n, h, w, c]), { weight: rt([rnd() < 0.9 ? c : pick(SMALL)]), bias: rt([c]), runningMean: rt([c]), runningVar: rt([c]),
          eps: pick([1e-5, 0, -1, NaN]), momentum: pick([0.1, 0, 1, 2, NaN]) }, { relu: rnd() < 0.5, groups });
        return bw.batchNormBackward(rt([n, h, w, c]), rt([n, h, w, c]), rt([c]), r.mean, r.invstd);
      }]; },
    globalAvgPoolBackward: () => { const sh: [number, number, number, number] = [pick(SMALL), pick(SMALL), pick(SMALL), pick(SMALL)];
      return [`globalAvgPoolBackward [${sh}]`, () => bw.globalAvgPoolBackward(rt([sh[0], rnd() < 0.8 ? sh[3] : pick(SMALL)]), sh)]; },
  };
  return { forward, backward };
}

function run(t: Test, seed: number, count: number, dev: (x: Tensor) => Tensor, withBackward: boolean): void {
  const g = generator(seed);
  const m = makers(g, dev);
  const all = { ...m.forward, ...(withBackward ? m.backward : {}) };
  const names = Object.keys(all);
  const failures: string[] = [];
  let returned = 0, refused = 0;
  for (let i = 0; i < count; i++) {
    const [desc, call] = all[g.pick(names)]!();
    const made: Tensor[] = [];
    try {
      const r = call();
      if (r instanceof Tensor) made.push(r);
      returned++;
    } catch (e) {
      if (isSslInvError(e)) refused++;
      else failures.push(`${desc}: ${(e as Error).name}: ${(e as Error).message}`);
    } finally {
      for (const x of made) x.dispose();
    }
  }
  t.same(failures.slice(0, 5), [], `${count} calls: ${returned} returned, ${refused} refused with a code`);
  t.ok(returned > count / 5 && refused > count / 20, 'both valid and invalid arguments were reached');
}

t.test('CPU ops, forward and training', async (t) => {
  run(t, 0x0b5e55ed, CPU_CASES, (x) => x, true);
});

t.test('CUDA forward ops', { skip: cudaAvailable() ? false : 'no CUDA device' }, async (t) => {
  run(t, 0x00c0da00, DEVICE_CASES, (x) => { const d = x.to('cuda'); x.dispose(); return d; }, false);
});
