// ops.normalizeImagesU8 (ToTensor + Normalize of a uint8 NHWC batch into float32 NCHW) on the CPU and
// on each CUDA device of this machine (the emulated one in the default suite), against torchvision's
// float32 arithmetic written out here: (fround(v / 255) - mean) / std, each step rounded to float32.
// Every byte value in every channel, 1 to 4 channels, odd sizes, an empty batch, the device's result
// bit-identical to the CPU's, and the refusals.
import t from 'tap';
import { cudaInfo } from '../../src/device';
import * as ops from '../../src/ops';
import { empty, tensor } from '../../src/tensor';

const f = Math.fround;

/** The reference: x [N, H, W, C] uint8 -> [N, C, H, W] float32 values. */
function reference(x: Uint8Array, [n, h, w, c]: number[], mean: number[], std: number[]): Float32Array {
  const out = new Float32Array(n! * c! * h! * w!);
  for (let i = 0; i < n!; i++) {
    for (let y = 0; y < h!; y++) {
      for (let xx = 0; xx < w!; xx++) {
        for (let k = 0; k < c!; k++) {
          const v = x[((i * h! + y) * w! + xx) * c! + k]!;
          out[((i * c! + k) * h! + y) * w! + xx] = f(f(f(v / 255) - f(mean[k]!)) / f(std[k]!));
        }
      }
    }
  }
  return out;
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

const devices = ['cpu', ...cudaInfo().devices.map((d) => `cuda:${d.index}`)];
for (const device of devices) {
  t.test(`normalizeImagesU8 on ${device}`, async (t) => {
    const cases: { shape: number[]; mean: number[]; std: number[] }[] = [
      { shape: [2, 16, 24, 3], mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },  // every byte value per channel
      { shape: [1, 7, 5, 1], mean: [0.5], std: [0.25] },
      { shape: [3, 5, 9, 4], mean: [0.1, -0.2, 0.3, 0], std: [1, 2, -0.5, 3e-3] },
      { shape: [1, 1, 1, 3], mean: [0, 0, 0], std: [1, 1, 1] },
      { shape: [0, 4, 4, 3], mean: [0, 0, 0], std: [1, 1, 1] },
    ];
    for (const c of cases) {
      const count = c.shape.reduce((a, b) => a * b, 1);
      const data = Uint8Array.from({ length: count }, (_, i) => (i * 131 + (i >> 8)) & 255);
      const x = tensor(data, c.shape).to(device);
      const y = ops.normalizeImagesU8(x, { mean: c.mean, std: c.std });
      const [n, h, w, ch] = c.shape as [number, number, number, number];
      t.same(y.shape, [n, ch, h, w], `[${c.shape}]: NCHW`);
      t.equal(y.device, x.device, `[${c.shape}]: on x's device`);
      t.same(bits(y.toFloat32Array()), bits(reference(data, c.shape, c.mean, c.std)), `[${c.shape}]: torchvision's float32 bits`);
      x.dispose();
      y.dispose();
    }
    const x = tensor(new Uint8Array(2 * 2 * 2 * 3), [2, 2, 2, 3]).to(device);
    const norm = { mean: [0, 0, 0], std: [1, 1, 1] };
    const refusals: [string, () => unknown, string][] = [
      ['float32 pixels', () => { const z = empty('float32', [1, 2, 2, 3], device); try { return ops.normalizeImagesU8(z, norm); } finally { z.dispose(); } }, 'ERR_DTYPE_MISMATCH'],
      ['a rank-3 image', () => { const z = empty('uint8', [2, 2, 3], device); try { return ops.normalizeImagesU8(z, norm); } finally { z.dispose(); } }, 'ERR_SHAPE_MISMATCH'],
      ['5 channels', () => { const z = empty('uint8', [1, 2, 2, 5], device); try { return ops.normalizeImagesU8(z, { mean: [0, 0, 0, 0, 0], std: [1, 1, 1, 1, 1] }); } finally { z.dispose(); } }, 'ERR_SHAPE_MISMATCH'],
      ['a zero std', () => ops.normalizeImagesU8(x, { mean: [0, 0, 0], std: [1, 0, 1] }), 'ERR_INVALID_ARGUMENT'],
      ['a NaN mean', () => ops.normalizeImagesU8(x, { mean: [0, NaN, 0], std: [1, 1, 1] }), 'ERR_INVALID_ARGUMENT'],
      ['two values for three channels', () => ops.normalizeImagesU8(x, { mean: [0, 0], std: [1, 1, 1] }), 'ERR_SHAPE_MISMATCH'],
    ];
    for (const [what, fn, code] of refusals) t.throws(fn, { code }, `${what} is refused with ${code}`);
    x.dispose();
  });
}
