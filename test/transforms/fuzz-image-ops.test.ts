// The image operations (geometric and colour transforms, resampling, crops, normalisation, the
// evaluation preprocessing) against seeded random images and parameters: sizes from 0 to 64 pixels,
// 1 to 4 channels, data of the wrong length, angles, factors, sigmas and scales that are 0, negative,
// huge, NaN or infinite, unknown filters. Each call must return or throw an SslInvError; anything
// else (a TypeError, a native fault ending this file) fails. 20,000 calls under five seeds found
// nothing while this test was written; it guards the argument checks from here on.
import t from 'tap';
import * as geo from '../../src/transforms/geometric';
import * as col from '../../src/transforms/color';
import * as io from '../../src/image-ops';
import * as pre from '../../src/data/preprocess';
import { isSslInvError } from '../../src/errors';
import { FuzzRng } from '../helpers/fuzz';

const COUNT = Number(process.env.SSL_INV_FUZZ_IMAGES ?? 1500);
const r = new FuzzRng(0x1a9e0b5);
const rnd = () => r.next() / 4294967296;
const pick = <T>(a: readonly T[]): T => a[r.below(a.length)]!;
const SZ = [0, 1, 1, 2, 3, 5, 8, 17, 33, 64];
const NUM = [0, 1, -1, 0.5, 2, 45, -90, 360, 1e9, -1e9, NaN, Infinity, 1e-30, 3.7];
const FILTERS = ['nearest', 'lanczos', 'bilinear', 'bicubic', 'box', 'hamming', 'bogus'] as const;
function img(): io.ImageU8 {
  const w = pick(SZ), h = pick(SZ), c = pick([3, 3, 3, 1, 4, 2]);
  const n = rnd() < 0.95 ? w * h * c : pick(SZ);
  return { data: Uint8Array.from({ length: n }, () => r.below(256)), width: w, height: h, channels: c };
}
const cases: Record<string, () => [string, () => unknown]> = {
  rotate: () => { const i = img(), a = pick(NUM); return [`rotate ${i.width}x${i.height}x${i.channels} ${a}`, () => geo.rotate(i, a)]; },
  affine: () => { const i = img(); const p = { angle: pick(NUM), translate: [pick(NUM), pick(NUM)] as [number, number], scale: pick(NUM), shear: pick([pick(NUM), [pick(NUM)], [pick(NUM), pick(NUM)]]) as number | [number] | [number, number] };
    return [`affine ${i.width}x${i.height}x${i.channels} ${JSON.stringify(p)}`, () => geo.affine(i, p)]; },
  resizedCrop: () => { const i = img(); const a = [pick(NUM), pick(NUM), pick(SZ), pick(SZ), pick(SZ)];
    return [`resizedCrop ${i.width}x${i.height} ${a}`, () => geo.resizedCrop(i, a[0]!, a[1]!, a[2]!, a[3]!, [a[4]!, a[4]!])]; },
  flips: () => { const i = img(); return [`flips ${i.width}x${i.height}`, () => { geo.hflip(i); geo.vflip(i); }]; },
  elastic: () => { const i = img(); const s = pick(NUM); return [`elastic ${i.width}x${i.height} ${s}`, () => geo.elasticDeform(i, s, r.below(100))]; },
  color: () => { const i = img(); const f = pick(NUM); const which = r.below(9);
    return [`color${which} ${i.width}x${i.height}x${i.channels} ${f}`, () => [() => col.grayscale(i), () => col.adjustBrightness(i, f), () => col.adjustContrast(i, f), () => col.adjustSaturation(i, f),
      () => col.adjustSharpness(i, f), () => col.adjustHue(i, f), () => col.invert(i), () => col.equalize(i), () => col.posterize(i, f)][which]!()]; },
  blur: () => { const i = img(); const k = pick([1, 3, 5, 2, 0, -1, 9]), s = pick(NUM);
    return [`blur ${i.width}x${i.height} k${k} s${s}`, () => rnd() < 0.5 ? col.gaussianBlur(i, k, s) : col.pilGaussianBlur(i, s)]; },
  resize: () => { const i = img(); const spec = { width: pick(SZ), height: pick(SZ), filter: pick(FILTERS) as io.ResampleFilter };
    return [`resize ${i.width}x${i.height}x${i.channels} -> ${spec.width}x${spec.height} ${spec.filter}`, () => io.resizeU8(i, spec)]; },
  cropNorm: () => { const i = img(); const w = { top: pick(NUM), left: pick(NUM), height: pick(SZ), width: pick(SZ) };
    return [`cropNorm ${i.width}x${i.height} ${JSON.stringify(w)}`, () => io.cropNormalizeU8(i, w, { mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, pick([0.2, 0, NaN])] })]; },
  resizeCropNorm: () => { const i = img(); const s = { width: pick(SZ), height: pick(SZ), filter: pick(FILTERS) as io.ResampleFilter }; const w = { top: pick(SZ), left: pick(SZ), height: pick(SZ), width: pick(SZ) };
    return [`resizeCropNorm ${i.width}x${i.height} ${JSON.stringify(s)} ${JSON.stringify(w)}`, () => io.resizeCropNormalizeU8(i, s, w, { mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2] })]; },
  preprocess: () => { const i = img(); const s = pick(SZ), c = pick(SZ);
    return [`preprocess ${i.width}x${i.height} ${s} ${c}`, () => pre.centerCrop(pre.resizeShorterSide(i, s), c)]; },
};

t.test('image operations: every call returns or is refused with a code', async (t) => {
  const failures: string[] = [];
  let returned = 0, refused = 0;
  for (let i = 0; i < COUNT; i++) {
    const name = pick(Object.keys(cases));
    const [desc, call] = cases[name]!();
    try {
      call();
      returned++;
    } catch (e) {
      if (isSslInvError(e)) refused++;
      else failures.push(`${desc}: ${(e as Error).name}: ${(e as Error).message}`);
    }
  }
  t.same(failures.slice(0, 5), [], `${COUNT} calls: ${returned} returned, ${refused} refused with a code`);
  t.ok(returned > COUNT / 5 && refused > COUNT / 5, 'both valid and invalid arguments were reached');
});
