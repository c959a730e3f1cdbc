// applyAugmentAsync (the whole MoCo v2 chain in one native call on a libuv worker) against the serial
// TS chain, applyAugment / augment: bit-identical float32 views for every set over many seeds and
// image sizes, with every branch of the chain exercised (and counted, so the test cannot pass on a
// draw that happened to miss one); the coded errors of bad parameters; the image copied before the
// call returns; and many concurrent calls into the slots of one tensor. The uint8 output (the view
// before ToTensor, HWC) is applyAugmentU8's pixels, and its normalizeImagesU8 the float32 view's bits.
import t from 'tap';
import type { ImageU8 } from '../../src/image-ops';
import { SslInvError } from '../../src/errors';
import { empty, Tensor } from '../../src/tensor';
import { AUGMENT_SETS, AugmentParams, AugmentRng, AugmentSet, applyAugment, applyAugmentAsync, applyAugmentU8, augment,
  drawAugmentParams } from '../../src/transforms/augment';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/preprocess';
import { normalizeImagesU8 } from '../../src/ops';

/** A deterministic RGB image with smooth structure and noise (so every op changes something). */
function image(width: number, height: number, seed: number): ImageU8 {
  const r = new AugmentRng(seed);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = (x * 255 / Math.max(1, width - 1) + r.randint(0, 40)) & 255;
      data[i + 1] = (y * 255 / Math.max(1, height - 1) + r.randint(0, 40)) & 255;
      data[i + 2] = ((x + y) * 7 + r.randint(0, 60)) & 255;
    }
  }
  return { data, width, height, channels: 3 };
}

/** The bytes of slot `slot` of a [N, 3, s, s] float32 tensor. */
function slotOf(all: Float32Array, slot: number, size: number): Float32Array {
  const per = 3 * size * size;
  return all.subarray(slot * per, (slot + 1) * per);
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length), y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Which branches of the chain a view's parameters take (for the coverage assertions). */
function branches(img: ImageU8, p: AugmentParams): string[] {
  const out: string[] = [];
  if (p.set !== 'dorsal') out.push(p.hflip ? 'flip' : 'noflip');
  if (p.set !== 'ventral') {
    out.push(p.colorJitter ? 'jitter' : 'nojitter', p.grayscale ? 'gray' : 'nogray',
      p.blurSigma !== null ? 'blur' : 'noblur');
    if (p.colorJitter) out.push(`first${p.colorJitter.order[0]}`, `last${p.colorJitter.order[3]}`);
  } else {
    out.push('ventral');
  }
  if (p.set === 'dorsal') {
    const short = Math.min(img.width, img.height), long = Math.max(img.width, img.height);
    out.push(short === p.size && Math.trunc(p.size * long / short) === long ? 'noresize' : 'resize');
  }
  return out;
}

// Sizes: odd, tall, wide, tiny (upscaled), and exactly the output size (dorsal's no-resize path).
const IMAGE_SIZES: [number, number][] = [[64, 48], [37, 53], [101, 33], [5, 7], [40, 40], [40, 61], [97, 40]];

for (const set of AUGMENT_SETS) {
  t.test(`${set}: applyAugmentAsync equals applyAugment bit for bit`, async (t) => {
    const seen = new Map<string, number>();
    let views = 0;
    for (const [w, h] of IMAGE_SIZES) {
      for (const size of [40, 23]) {
        const img = image(w, h, w * 1000 + h);
        const n = 24;
        const out = empty('float32', [n, 3, size, size]);
        const outU8 = empty('uint8', [n, size, size, 3]);
        try {
          const params: AugmentParams[] = [];
          for (let i = 0; i < n; i++) params.push(drawAugmentParams(w, h, set, new AugmentRng(i * 7919 + w + h * 31 + size), size));
          await Promise.all(params.flatMap((p, slot) => [applyAugmentAsync(img, p, { tensor: out, slot }),
            applyAugmentAsync(img, p, { tensor: outU8, slot })]));
          const all = out.toFloat32Array();
          const pixels = outU8.toArray() as Uint8Array;
          const normalized = normalizeImagesU8(outU8, { mean: IMAGENET_MEAN, std: IMAGENET_STD });
          const fromU8 = normalized.toFloat32Array();
          normalized.dispose();
          let u8Bad = 0;
          params.forEach((p, slot) => {
            const ok = sameBits(slotOf(all, slot, size), applyAugment(img, p));
            if (!ok) t.fail(`${set} ${w}x${h} -> ${size}, view ${slot}: ${JSON.stringify(p)}`);
            const view = applyAugmentU8(img, p).data, per = 3 * size * size;
            if (!view.every((v, i) => v === pixels[slot * per + i]) || !sameBits(slotOf(fromU8, slot, size), slotOf(all, slot, size))) u8Bad++;
            for (const b of branches(img, p)) seen.set(b, (seen.get(b) ?? 0) + 1);
            views++;
          });
          if (u8Bad > 0) t.fail(`${set} ${w}x${h} -> ${size}: ${u8Bad} uint8 views differ from applyAugmentU8 or do not normalise to the float32 view`);
        } finally {
          out.dispose();
          outU8.dispose();
        }
      }
    }
    const need = set === 'ventral' ? ['flip', 'noflip', 'ventral']
      : ['jitter', 'nojitter', 'gray', 'nogray', 'blur', 'noblur', 'first0', 'first1', 'first2', 'first3',
        'last0', 'last1', 'last2', 'last3', ...(set === 'default' ? ['flip', 'noflip'] : ['resize', 'noresize'])];
    for (const b of need) t.ok((seen.get(b) ?? 0) > 0, `branch ${b} occurred (${seen.get(b) ?? 0} of ${views} views)`);
    t.pass(`${views} views compared, float32 and uint8`);
  });
}

t.test('224-pixel views from augment(): the same bits for each set and seed', async (t) => {
  const img = image(300, 257, 5);
  for (const set of AUGMENT_SETS) {
    const n = 6;
    const out = empty('float32', [n, 3, 224, 224]);
    try {
      const rngs = Array.from({ length: n }, (_, i) => new AugmentRng(1000 + i));
      const params = rngs.map((r) => drawAugmentParams(img.width, img.height, set, r.clone(), 224));
      await Promise.all(params.map((p, slot) => applyAugmentAsync(img, p, { tensor: out, slot })));
      const all = out.toFloat32Array();
      rngs.forEach((r, slot) => t.ok(sameBits(slotOf(all, slot, 224), augment(img, set, r, 224)), `${set} seed ${1000 + slot}`));
    } finally {
      out.dispose();
    }
  }
});

t.test('64 concurrent calls into one tensor give the serial bits', async (t) => {
  const imgs = Array.from({ length: 8 }, (_, i) => image(60 + i * 3, 50 + i * 5, i));
  const n = 64, size = 48;
  const out = empty('float32', [n, 3, size, size]);
  try {
    const sets: AugmentSet[] = [];
    const params = Array.from({ length: n }, (_, i) => {
      const set = AUGMENT_SETS[i % 3]!;
      sets.push(set);
      const img = imgs[i % imgs.length]!;
      return drawAugmentParams(img.width, img.height, set, new AugmentRng(i), size);
    });
    await Promise.all(params.map((p, slot) => applyAugmentAsync(imgs[slot % imgs.length]!, p, { tensor: out, slot })));
    const all = out.toFloat32Array();
    let same = 0;
    params.forEach((p, slot) => { if (sameBits(slotOf(all, slot, size), applyAugment(imgs[slot % imgs.length]!, p))) same++; });
    t.equal(same, n, 'every slot matches');
  } finally {
    out.dispose();
  }
});

t.test('the pixels are copied before the call returns', async (t) => {
  const img = image(70, 50, 3);
  const keep = { ...img, data: Uint8Array.from(img.data) };
  const p = drawAugmentParams(70, 50, 'default', new AugmentRng(4), 32);
  const out = empty('float32', [1, 3, 32, 32]);
  try {
    const done = applyAugmentAsync(img, p, { tensor: out, slot: 0 });
    img.data.fill(0);  // the caller reuses its buffer at once
    await done;
    t.ok(sameBits(out.toFloat32Array(), applyAugment(keep, p)));
  } finally {
    out.dispose();
  }
});

t.test('bad parameters and outputs give coded errors naming the field', async (t) => {
  const img = image(50, 40, 1);
  const def = drawAugmentParams(50, 40, 'default', new AugmentRng(2), 16);
  const jit = { order: [3, 1, 0, 2], brightness: 1.1, contrast: 0.9, saturation: 1.2, hue: 0.05 };
  const base: AugmentParams = { ...def, colorJitter: jit, blurSigma: 1 };
  let out: Tensor | undefined = empty('float32', [2, 3, 16, 16]);
  const bad = async (p: unknown, code: string, field: RegExp, o: { tensor: Tensor; slot: number } = { tensor: out!, slot: 0 }) => {
    const e = await applyAugmentAsync(img, p as AugmentParams, o).then(() => undefined, (err: unknown) => err);
    t.ok(e instanceof SslInvError, `${field}: an SslInvError`);
    t.match(e, { code, message: field }, `${field.source}: ${(e as Error)?.message}`);
  };
  try {
    await bad({ ...base, set: 'lateral' }, 'ERR_INVALID_ARGUMENT', /set/);
    await bad({ ...base, size: 0 }, 'ERR_INVALID_ARGUMENT', /size/);
    await bad({ ...base, crop: { top: 30, left: 0, height: 20, width: 10 } }, 'ERR_INVALID_ARGUMENT', /crop/);
    await bad({ ...base, crop: undefined }, 'ERR_INVALID_ARGUMENT', /crop/);
    await bad({ ...base, hflip: 1 }, 'ERR_INVALID_ARGUMENT', /hflip/);
    await bad({ ...base, colorJitter: undefined }, 'ERR_INVALID_ARGUMENT', /colorJitter/);
    await bad({ ...base, colorJitter: { ...jit, order: [0, 1, 2, 2] } }, 'ERR_INVALID_ARGUMENT', /colorJitter\.order/);
    await bad({ ...base, colorJitter: { ...jit, order: ['0', '1', '2', '3'] } }, 'ERR_INVALID_ARGUMENT', /colorJitter\.order/);
    await bad({ ...base, colorJitter: { ...jit, brightness: NaN } }, 'ERR_INVALID_ARGUMENT', /colorJitter\.brightness/);
    await bad({ ...base, colorJitter: { ...jit, contrast: 1e39 } }, 'ERR_INVALID_ARGUMENT', /colorJitter\.contrast/);
    await bad({ ...base, colorJitter: { ...jit, saturation: 'x' } }, 'ERR_INVALID_ARGUMENT', /colorJitter\.saturation/);
    await bad({ ...base, colorJitter: { ...jit, hue: 0.7 } }, 'ERR_INVALID_ARGUMENT', /colorJitter\.hue/);
    await bad({ ...base, grayscale: 'yes' }, 'ERR_INVALID_ARGUMENT', /grayscale/);
    await bad({ ...base, blurSigma: undefined }, 'ERR_INVALID_ARGUMENT', /blurSigma/);
    await bad({ ...base, blurSigma: -1 }, 'ERR_INVALID_ARGUMENT', /blurSigma/);
    await bad({ ...base, blurSigma: '1' }, 'ERR_INVALID_ARGUMENT', /blurSigma/);
    await bad(null, 'ERR_INVALID_ARGUMENT', /params/);
    await bad(base, 'ERR_INVALID_ARGUMENT', /slot/, { tensor: out, slot: 2 });
    const wrong = empty('float32', [2, 3, 17, 16]);
    try {
      await bad(base, 'ERR_SHAPE_MISMATCH', /out/, { tensor: wrong, slot: 0 });
    } finally {
      wrong.dispose();
    }
    const chw = empty('uint8', [2, 3, 16, 16]);
    try {
      await bad(base, 'ERR_SHAPE_MISMATCH', /out: expected \[N, 16, 16, 3\]/, { tensor: chw, slot: 0 });
    } finally {
      chw.dispose();
    }
    const ints = empty('int32', [2, 3, 16, 16]);
    try {
      await bad(base, 'ERR_DTYPE_MISMATCH', /out/, { tensor: ints, slot: 0 });
    } finally {
      ints.dispose();
    }
    // A ventral view ignores the fields its set does not use, as applyAugment does.
    const v = drawAugmentParams(50, 40, 'ventral', new AugmentRng(9), 16);
    await applyAugmentAsync(img, { ...v, colorJitter: { ...jit, hue: 9 } } as AugmentParams, { tensor: out, slot: 1 });
    t.ok(sameBits(slotOf(out.toFloat32Array(), 1, 16), applyAugment(img, v)), 'ventral ignores colorJitter');
  } finally {
    out.dispose();
    out = undefined;
  }
});
