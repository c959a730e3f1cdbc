// The views on a CUDA device against the CPU's, bit for bit, for every synthetic transform (small
// grids of an odd-sized image), and for deform also a window of views that does not start at 0. Where there is no usable GPU it checks the refusal instead; the
// kernels' logic is covered on every machine by test/cuda-emu.
import t from 'tap';
import { cudaAvailable, cudaInfo } from '../../src/device';
import { SYNTHETIC_TRANSFORMS, defaultK, transformGrid } from '../../src/transforms/grid';
import { elasticDeformWith } from '../../src/transforms/geometric';
import { applyView, makeViews } from '../../src/transforms/views';
import { deformViewDraws, makeViewsOnDevice } from '../../src/transforms/views-device';
import { makeViewsOfImages } from '../../src/transforms/views-batch';
import { testImage } from '../helpers/test-image';

const opts = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], deformSeed: 3 };

// On every machine: the device deform's host half (the random draws it uploads), run through the CPU
// elastic op, gives applyView's images, so the GPU gets applyView's exact draws and parameters.
t.test('deform on the device draws what applyView draws', async (t) => {
  const img = testImage(33, 27);
  const grid = transformGrid('deform', 256, 40, 32);
  const j = 37, views = grid.views.slice(j, j + 9), seed = opts.deformSeed + j;
  const { noise, params } = deformViewDraws(img, views, seed);
  const n = img.height * img.width;
  t.equal(noise.length, views.length * 2 * n, 'noise is [V, 2, H, W]');
  views.forEach((v, q) => {
    const p = params[q]!;
    const draws = {
      affineOffsets: Float32Array.from(p.affineOffsets),
      noiseX: noise.subarray(2 * q * n, (2 * q + 1) * n),
      noiseY: noise.subarray((2 * q + 1) * n, (2 * q + 2) * n),
    };
    const got = elasticDeformWith(img, p.sigma, draws, p.alpha);
    t.same(Buffer.from(got.data), Buffer.from(applyView(img, v, seed + q).data), `view ${j + q} (sigma ${p.sigma})`);
  });
  t.throws(() => deformViewDraws(img, transformGrid('rotation', 4, 40, 32).views, 0), { code: 'ERR_INVALID_ARGUMENT' });
});

if (!cudaAvailable()) {
  t.test('without a usable GPU the device views are refused, not faked', async (t) => {
    const grid = transformGrid('rotation', 4, 32, 28);
    t.throws(() => makeViewsOnDevice(testImage(), grid, 0, 4, opts, 'cuda'), { code: 'ERR_DEVICE_UNAVAILABLE' });
    t.throws(() => makeViewsOnDevice(testImage(), grid, 0, 4, opts, 'cpu'), { code: 'ERR_INVALID_ARGUMENT' });
    t.comment(`no CUDA device: ${cudaInfo().reason}`);
  });
} else {
  t.test('every transform: device views equal the CPU views bit for bit', async (t) => {
    const img = testImage();
    for (const tr of SYNTHETIC_TRANSFORMS) {
      // 16 views of the 256-view grids (deform's grid is fixed: its first 16 views).
      const grid = tr === 'deform' ? transformGrid(tr, 256, 64, 56) : transformGrid(tr, defaultK(tr) === 256 ? 16 : defaultK(tr), 64, 56);
      const k = Math.min(grid.k, 16);
      const cpu = makeViews(img, grid, 0, k, opts);
      const dev = makeViewsOnDevice(img, grid, 0, k, opts, 'cuda:0');
      const a = cpu.toFloat32Array(), b = dev.toFloat32Array();
      let diff = 0;
      for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) diff++;
      t.equal(diff, 0, `${tr} (${k} views): ${diff} of ${a.length} values differ`);
      cpu.dispose(); dev.dispose();
    }
  });

  t.test('deform: a window of views away from 0, more than one device call, another seed and size', async (t) => {
    // Views [29, 100): seeds deformSeed + 29 .. + 99, 71 views (two calls of at most 64), every sigma.
    const img = testImage(33, 27);
    const grid = transformGrid('deform', 256, 40, 32);
    const o = { ...opts, deformSeed: 11 };
    const cpu = makeViews(img, grid, 29, 100, o);
    const dev = makeViewsOnDevice(img, grid, 29, 100, o, 'cuda:0');
    const a = cpu.toFloat32Array(), b = dev.toFloat32Array();
    let diff = 0;
    for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) diff++;
    t.equal(diff, 0, `deform views [29, 100): ${diff} of ${a.length} values differ`);
    cpu.dispose(); dev.dispose();
  });

  t.test('makeViewsOfImages on the device: the rows of each image equal its CPU views', async (t) => {
    const imgs = [testImage(33, 27), testImage(20, 31), testImage(17, 17)];
    for (const tr of ['h_flip', 'posterize', 'deform'] as const) {
      const grid = transformGrid(tr, defaultK(tr), 40, 32);
      const j1 = Math.min(grid.k, 7);
      const vo = imgs.map((_, i) => ({ ...opts, deformSeed: 5 + i * grid.k }));
      const cpu = makeViewsOfImages(imgs, grid, 0, j1, vo), dev = makeViewsOfImages(imgs, grid, 0, j1, vo, 'cuda:0');
      t.equal(dev.device, 'cuda:0');
      t.same(Array.from(dev.toFloat32Array()), Array.from(cpu.toFloat32Array()), `${tr}: ${imgs.length} images x ${j1} views`);
      cpu.dispose(); dev.dispose();
      const cpuC = makeViewsOfImages(imgs, grid, 0, j1, vo, 'cpu', true), devC = makeViewsOfImages(imgs, grid, 0, j1, vo, 'cuda:0', true);
      t.same(Array.from(devC.toFloat32Array()), Array.from(cpuC.toFloat32Array()), `${tr}: ${imgs.length} clean inputs, then the views`);
      cpuC.dispose(); devC.dispose();
    }
  });
}
