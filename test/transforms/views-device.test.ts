// The views on a CUDA device against the CPU's, bit for bit, for every synthetic transform (small
// grids of an odd-sized image). Where there is no usable GPU it checks the refusal instead; the
// kernels' logic is covered on every machine by test/cuda-emu.
import t from 'tap';
import { cudaAvailable, cudaInfo } from '../../src/device';
import { SYNTHETIC_TRANSFORMS, defaultK, transformGrid } from '../../src/transforms/grid';
import { makeViews } from '../../src/transforms/views';
import { makeViewsOnDevice } from '../../src/transforms/views-device';
import { testImage } from '../helpers/test-image';

const opts = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], deformSeed: 3 };

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
}
