// StepViewMaker (src/train/step-views.ts), pre-training's views of each step, made when the step
// comes (the CPU) or one step ahead (a device):
//   1. both ways give the same files, the same bits and the same skipped-image reports, step by
//      step, and those bits are augment()'s with each view's own generator (q then k per image);
//   2. ahead, a file that cannot be read fails its own step, not the one before it, and the steps
//      before it are whole;
//   3. ahead, the next step's views are queued when take() returns; close() with them still being made
//      waits for them and frees them: no buffer is left;
//   4. steps must be taken in order, each once;
//   5. uint8 pixels (pre-training on a device): modelInput turns them into the float32 views' bits,
//      on the CPU and on each CUDA device, and frees them.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { decodeImageFile } from '../../src/data/decode';
import { memoryStats } from '../../src/tensor';
import { AugmentRng, augment } from '../../src/transforms/augment';
import { MadeViews, StepImages, StepViewMaker, StepViewsPlan, modelInput } from '../../src/train/step-views';
import { cudaInfo } from '../../src/device';
import { Tensor } from '../../src/tensor';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-step-views-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const files: string[] = [];
const BATCH = 3, STEPS = 4, SIZE = 32;

t.before(async () => {
  for (let i = 0; i < BATCH * STEPS; i++) {
    const f = path.join(dir, `img${String(i).padStart(2, '0')}.png`);
    files.push(f);
    if (i === 4) {
      fs.writeFileSync(f, 'not an image');  // step 1, slot 1
      continue;
    }
    const w = 41 + i * 3, h = 37 + i * 2;
    const px = Buffer.alloc(w * h * 3);
    for (let j = 0; j < px.length; j++) px[j] = (j * 7 + i * 31 + (j % w) * 3) % 256;
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(f);
  }
});

const rngOf = (images: StepImages, b: number, v: number) => new AugmentRng(BigInt(1000 + images.idx[b]! * 2 + v));

function plan(ahead: boolean, onError: 'error' | 'skip', list = files, pixels: 'float32' | 'uint8' = 'float32'): StepViewsPlan {
  return {
    epoch: 0, steps: STEPS, batch: BATCH, size: SIZE, set: 'default', workers: 2, onError, ahead, pixels,
    stepImages: (step) => {
      const idx = [0, 1, 2].map((b) => step * BATCH + b);
      return { idx, repeat: idx.map(() => 0), files: idx.map((i) => list[i]!) };
    },
    viewRng: rngOf,
  };
}

interface Seen { files: string[]; q: Float32Array; k: Float32Array; skips: string[] }

/** Every step's views; uint8 ones through modelInput on `device` (which frees them). */
async function allSteps(ahead: boolean, pixels: 'float32' | 'uint8' = 'float32', device = 'cpu'): Promise<Seen[]> {
  const maker = new StepViewMaker(plan(ahead, 'skip', files, pixels));
  const seen: Seen[] = [];
  const floats = (x: Tensor) => {
    if (pixels === 'float32') return x.toFloat32Array();
    const y = modelInput(x, device);
    try {
      return y.toFloat32Array();
    } finally {
      y.dispose();
    }
  };
  try {
    for (let s = 0; s < STEPS; s++) {
      const m = await maker.take(s);
      if (pixels === 'uint8' && (m.imQ.dtype !== 'uint8' || m.imQ.shape.join() !== [BATCH, SIZE, SIZE, 3].join())) throw new Error('not uint8 HWC views');
      seen.push({ files: m.files, q: floats(m.imQ), k: floats(m.imK), skips: m.skips.map((x) => `${x.step}:${path.basename(x.file)}->${path.basename(x.replacedBy)}:${x.error.code}`) });
      m.imQ.dispose();
      m.imK.dispose();
    }
  } finally {
    await maker.close();
  }
  return seen;
}

const sameBits = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

t.test('ahead or not: the same views, bit for bit, and the same skips; augment()\'s bits', async (t) => {
  const before = memoryStats().liveBuffers;
  const now = await allSteps(false), ahead = await allSteps(true);
  t.equal(memoryStats().liveBuffers, before, 'no buffer left');
  for (let s = 0; s < STEPS; s++) {
    t.same(ahead[s]!.files, now[s]!.files, `step ${s}: the same files`);
    t.ok(sameBits(ahead[s]!.q, now[s]!.q) && sameBits(ahead[s]!.k, now[s]!.k), `step ${s}: the same bits`);
    t.same(ahead[s]!.skips, now[s]!.skips, `step ${s}: the same skips`);
  }
  t.same(now[1]!.skips, ['1:img04.png->img03.png:ERR_IMAGE_FORMAT'], 'the unreadable image is replaced by the one before it, reported at its step');
  t.same(now.flatMap((s) => s.skips).length, 1, 'and only there');
  // Step 2 against augment() of each image with its own generators, q then k.
  const per = 3 * SIZE * SIZE;
  let same = 0;
  for (let b = 0; b < BATCH; b++) {
    const img = await decodeImageFile(files[2 * BATCH + b]!);
    const images: StepImages = { idx: [6, 7, 8], repeat: [0, 0, 0], files: [] };
    const q = augment(img, 'default', rngOf(images, b, 0), SIZE), k = augment(img, 'default', rngOf(images, b, 1), SIZE);
    if (sameBits(q, now[2]!.q.subarray(b * per, (b + 1) * per)) && sameBits(k, now[2]!.k.subarray(b * per, (b + 1) * per))) same++;
  }
  t.equal(same, BATCH, "every view of step 2 is augment()'s with its generator");
});

for (const device of ['cpu', ...cudaInfo().devices.map((d) => `cuda:${d.index}`)]) {
  t.test(`uint8 pixels: modelInput on ${device} gives the float32 views' bits`, async (t) => {
    const before = memoryStats().liveBuffers;
    const floats = await allSteps(true), pixels = await allSteps(true, 'uint8', device);
    t.equal(memoryStats().liveBuffers, before, 'no buffer left');
    for (let s = 0; s < STEPS; s++) {
      t.ok(sameBits(pixels[s]!.q, floats[s]!.q) && sameBits(pixels[s]!.k, floats[s]!.k), `step ${s}: the same bits`);
      t.same(pixels[s]!.skips, floats[s]!.skips, `step ${s}: the same skips`);
    }
  });
}

t.test('ahead: an unreadable file fails its own step only', async (t) => {
  const before = memoryStats().liveBuffers;
  const maker = new StepViewMaker(plan(true, 'error'));
  let m: MadeViews | undefined;
  try {
    m = await maker.take(0);
    t.same(m.files.map((f) => path.basename(f)), ['img00.png', 'img01.png', 'img02.png'], 'step 0 is whole');
    m.imQ.dispose();
    m.imK.dispose();
    await t.rejects(maker.take(1), { code: 'ERR_IMAGE_FORMAT', file: files[4] }, 'step 1 fails, naming the file');
  } finally {
    await maker.close();
  }
  t.equal(memoryStats().liveBuffers, before, 'no buffer left');
});

t.test('close() while the next step\'s views are being made; steps in order', async (t) => {
  const before = memoryStats().liveBuffers;
  const good = files.map((f, i) => (i === 4 ? files[3]! : f));
  const maker = new StepViewMaker(plan(true, 'error', good));
  const m = await maker.take(0);
  // The property the lookahead rests on: step 1's native work was queued before take(0) returned
  // (a synchronous training step after it would otherwise hold that back).
  t.ok((maker as unknown as { made: Map<number, unknown> }).made.has(1), "step 1's views are queued when take(0) returns");
  m.imQ.dispose();
  m.imK.dispose();
  await t.rejects(maker.take(2), { code: 'ERR_INVALID_ARGUMENT' }, 'step 2 before step 1 is refused');
  await maker.close();
  t.equal(memoryStats().liveBuffers, before, "step 1's views, made after all, were freed");
});
