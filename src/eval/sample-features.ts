/**
 * Features of data-set samples for the downstream and extrinsic evaluations, in sample order.
 *
 * Each sample's image comes from its file (decoded as PIL's convert('RGB')), or from memory (CIFAR-10
 * batches), and is optionally cut to the sample's crop box first, as the original's 300W and Leeds
 * Sports Pose readers do (PIL's crop: the box may reach outside the image, where pixels are 0). Then
 * the evaluation transform (Resize, CenterCrop, ToTensor, Normalize) and the model. Images of a batch
 * are decoded in parallel (sharp on libuv threads) while the previous batch is in the network. For a
 * network on a device the batch is made as uint8 pixels and normalised there (data/device-input.ts).
 */
import { throwIfAborted } from '../abort';
import { DecodeOptions, decodeImageFile } from '../data/decode';
import { EvalTransform, preprocessInto } from '../data/preprocess';
import { deviceInput, pixelsFor } from '../data/device-input';
import { ImageU8 } from '../image-ops';
import { empty } from '../tensor';
import { FeatureExtractor } from './features';

/** PIL's Image.crop((left, top, right, bottom)) with integer box: zero outside the image. */
export function cropBox(img: ImageU8, box: { left: number; top: number; right: number; bottom: number }): ImageU8 {
  const w = box.right - box.left, h = box.bottom - box.top, c = img.channels;
  const out = new Uint8Array(Math.max(0, w) * Math.max(0, h) * c);
  for (let y = 0; y < h; y++) {
    const sy = box.top + y;
    if (sy < 0 || sy >= img.height) continue;
    const x0 = Math.max(0, -box.left), x1 = Math.min(w, img.width - box.left);
    if (x1 <= x0) continue;
    out.set(img.data.subarray((sy * img.width + box.left + x0) * c, (sy * img.width + box.left + x1) * c), (y * w + x0) * c);
  }
  return { data: out, width: w, height: h, channels: c };
}

export interface ImageSource<S> {
  /** The sample's RGB image, before the evaluation transform. */
  load(sample: S, position: number): Promise<ImageU8>;
}

/** Images from the samples' files, cut to `crop` when the sample has one. */
export function fileImages<S extends { path: string; crop?: { left: number; top: number; right: number; bottom: number } }>(
  decode?: DecodeOptions): ImageSource<S> {
  return {
    async load(s) {
      const img = await decodeImageFile(s.path, decode);
      return s.crop ? cropBox(img, s.crop) : img;
    },
  };
}

export async function sampleFeatures<S>(model: FeatureExtractor, samples: readonly S[], source: ImageSource<S>,
  transform: EvalTransform, batchSize: number, onProgress?: (done: number, total: number) => void, signal?: AbortSignal): Promise<Float32Array> {
  const n = samples.length, d = model.featureDim;
  const stopped = (done: number) => () => `feature extraction stopped after ${done} of ${n} samples`;
  throwIfAborted(signal, stopped(0));
  const out = new Float32Array(n * d);
  const load = (b0: number) => {
    const p = Promise.all(samples.slice(b0, Math.min(n, b0 + batchSize)).map((s, i) => source.load(s, b0 + i)));
    p.catch(() => undefined); // handled when awaited; this keeps a failure during the forward pass from being "unhandled"
    return p;
  };
  let next = n > 0 ? load(0) : undefined;
  for (let b0 = 0; b0 < n; b0 += batchSize) {
    // A prefetch left behind has its rejection handled (load above).
    throwIfAborted(signal, stopped(b0));
    const images = await next!;
    next = b0 + batchSize < n ? load(b0 + batchSize) : undefined;
    // For a network on a device the batch is made as uint8 pixels and normalised there.
    const pixels = pixelsFor(model.device);
    const shape = pixels === 'uint8' ? [images.length, transform.crop, transform.crop, 3] : [images.length, 3, transform.crop, transform.crop];
    let x = empty(pixels, shape);
    try {
      images.forEach((img, i) => preprocessInto(img, transform, x, i));
      if (pixels === 'uint8') x = deviceInput(x, transform, model.device!);
      out.set(model.features(x), b0 * d);
    } finally {
      x.dispose();
    }
    onProgress?.(Math.min(n, b0 + batchSize), n);
  }
  return out;
}
