/**
 * makeViews on a CUDA device: the same k views of one image (see views.ts for the contract and the
 * original's order of operations), bit for bit, written into a float32 device tensor
 * [j1 - j0, 3, crop, crop] that the network reads where it is.
 *
 * The image is uploaded once as uint8. On the device, batched over the views of a call: rotation,
 * torchvision affine (translation, scale, shear), flips, the torch Gaussian blur, brightness,
 * contrast, saturation, sharpness, hue, posterize, grayscale, invert and equalize
 * (native/cuda/geometric.cuh, blur.cuh, color.cuh), then for every view the final Resize ->
 * CenterCrop -> ToTensor -> Normalize (resample.cuh); resized_crop crops all its views on the device
 * and resizes each (its crops differ in size) straight into its slot. The elastic deform makes the
 * draws views.ts's applyView makes (numpy's RandomState(deformSeed + view index)): the six affine
 * offsets on the host, the two noise fields on the device continuing the same stream
 * (numpy_random.cuh), then warps, blurs and remaps there (elastic.cuh).
 */
import { SslInvError, callNative } from '../errors';
import { evalTransformPlan } from '../data/preprocess';
import { ImageU8, resizeCropNormalizeOptions } from '../image-ops';
import { native, NativeTensor } from '../native';
import { empty, tensor, Tensor, wrap } from '../tensor';
import { resolveDevice } from '../device';
import { RandomState } from '../random/mt19937';
import { elasticAffineDraws, elasticDraws } from './geometric';
import { TransformGrid, ViewParams } from './grid';
import { applyView, checkViewRange, ViewOptions, ViewsInto } from './views';

interface CudaViewsAddon {
  cudaColorViews(src: NativeTensor, op: string, params?: number[]): NativeTensor;
  cudaGeometricViews(src: NativeTensor, op: string, params: unknown[]): NativeTensor;
  cudaBlurViews(src: NativeTensor, kernelSize: number, sigmas: number[]): NativeTensor;
  cudaResizedCropViews(src: NativeTensor, crops: object[], options: object, out: NativeTensor, slot: number): undefined;
  cudaResizeCropNormalizeViews(views: NativeTensor, options: object, out?: NativeTensor, slot?: number): undefined;
  cudaElasticViews(src: NativeTensor, noise: NativeTensor, params: ElasticViewParams[]): NativeTensor;
  cudaNumpyUniformNoise(seeds: Uint32Array, skip: number, count: number, device: string): NativeTensor;
}

/** One deform view's parameters for cudaElasticViews (its noise goes separately). */
export interface ElasticViewParams {
  sigma: number;
  alpha: number;
  affineOffsets: number[];
}

function addon(): CudaViewsAddon {
  return native() as unknown as CudaViewsAddon;
}

/**
 * The device op of a view: a batched call (`family` + `op`) with its per-view parameter, 'identity'
 * for on/off views that are the untouched image, or undefined for views built on the CPU.
 */
type DeviceOp =
  | { family: 'color' | 'geometric' | 'blur' | 'crop' | 'elastic'; op: string; param: unknown; group: string }
  | { family: 'batch'; op: 'grayscale' | 'invert' | 'equalize' | 'identity'; group: string };

function deviceOp(v: ViewParams): DeviceOp | undefined {
  const color = (op: string, param: number): DeviceOp => ({ family: 'color', op, param, group: `color:${op}` });
  switch (v.op) {
    case 'adjust_brightness': return color('brightness', v.factor);
    case 'adjust_contrast': return color('contrast', v.factor);
    case 'adjust_saturation': return color('saturation', v.factor);
    case 'adjust_sharpness': return color('sharpness', v.factor);
    case 'adjust_hue': return color('hue', v.hueFactor);
    case 'posterize': return color('posterize', v.bits);
    case 'grayscale': case 'invert': case 'equalize': {
      const op = v.apply ? v.op : 'identity';
      return { family: 'batch', op, group: `batch:${op}` };
    }
    case 'hflip': case 'vflip':
      return v.apply ? { family: 'geometric', op: 'flip', param: v.op === 'hflip' ? 1 : 0, group: 'geometric:flip' }
        : { family: 'batch', op: 'identity', group: 'batch:identity' };
    case 'rotate': return { family: 'geometric', op: 'rotate', param: v.angle, group: 'geometric:rotate' };
    case 'affine':
      return { family: 'geometric', op: 'affine', param: { angle: v.angle, translate: v.translate, scale: v.scale, shear: v.shear }, group: 'geometric:affine' };
    case 'gaussian_blur': return { family: 'blur', op: 'gaussian_blur', param: v.sigma, group: `blur:${v.kernelSize}` };
    case 'resized_crop':
      return { family: 'crop', op: 'resized_crop', param: { top: v.top, left: v.left, height: v.height, width: v.width }, group: `crop:${v.size.join('x')}` };
    case 'deform': return { family: 'elastic', op: 'deform', param: v.sigma, group: 'elastic' };
  }
}

/** Deform views per device call: bounds the host noise and the device memory (about 30 bytes a pixel a view). */
const ELASTIC_VIEWS_PER_CALL = 64;

/**
 * The random draws of deform views `views` of `img` on the host, view q seeded with firstSeed + q,
 * exactly as applyView's elasticDeform draws them (RandomState(seed >>> 0), elasticDraws with
 * alphaAffine 50; alpha 1). noise: [V, 2, H, W] (view q's dx field, then its dy). The device path
 * makes the same draws, its noise on the device; this is its reference (views-device.test.ts).
 */
export function deformViewDraws(img: ImageU8, views: readonly ViewParams[], firstSeed: number): { noise: Float32Array; params: ElasticViewParams[] } {
  const n = img.height * img.width;
  const noise = new Float32Array(views.length * 2 * n);
  const params = views.map((v, q) => {
    if (v.op !== 'deform') throw new SslInvError('ERR_INVALID_ARGUMENT', `expected deform views, got ${v.op}`);
    const draws = elasticDraws(new RandomState((firstSeed + q) >>> 0), img.height, img.width);
    noise.set(draws.noiseX, 2 * q * n);
    noise.set(draws.noiseY, (2 * q + 1) * n);
    return { sigma: v.sigma, alpha: 1, affineOffsets: Array.from(draws.affineOffsets) };
  });
  return { noise, params };
}

/**
 * Deform views `views` of `img` (uploaded as `src`) as uint8 [V, H, W, C] on `dev`. The same draws as
 * deformViewDraws, split: the host draws each view's six affine offsets (it needs them for the affine
 * matrix), the device draws the two noise fields, continuing each view's numpy stream after those six
 * (native/cuda/numpy_random.cuh: bit-identical to the sequential generator), so no field crosses the bus.
 */
function deformViewsOnDevice(img: ImageU8, src: Tensor, views: readonly ViewParams[], firstSeed: number, dev: string): Tensor {
  const n = img.height * img.width;
  const seeds = new Uint32Array(views.length);
  const params = views.map((v, q) => {
    if (v.op !== 'deform') throw new SslInvError('ERR_INVALID_ARGUMENT', `expected deform views, got ${v.op}`);
    seeds[q] = (firstSeed + q) >>> 0;
    return { sigma: v.sigma, alpha: 1, affineOffsets: Array.from(elasticAffineDraws(new RandomState(seeds[q]!))) };
  });
  const noise = wrap(callNative('cuda deform noise', () => addon().cudaNumpyUniformNoise(seeds, 6, 2 * n, dev)));
  try {
    const fields = noise.reshape([views.length, 2, img.height, img.width]);
    try {
      return wrap(callNative('cuda deform views', () => addon().cudaElasticViews(src.handle, fields.handle, params)));
    } finally {
      fields.dispose();
    }
  } finally {
    // Safe while the kernels are pending: the device's one stream orders the memory's reuse.
    noise.dispose();
  }
}

/**
 * Writes views [j0, j1) of `img` into a new float32 tensor [j1 - j0, 3, crop, crop] on `device`, or,
 * with `into` (a tensor on that device), into its rows slot.. (and returns it); into.cleanSlot also
 * gets the image's clean input, from the same upload (see ViewsInto).
 */
export function makeViewsOnDevice(img: ImageU8, grid: TransformGrid, j0: number, j1: number, o: ViewOptions, device: string,
  into?: ViewsInto): Tensor {
  const dev = resolveDevice(device);
  if (dev === 'cpu') throw new SslInvError('ERR_INVALID_ARGUMENT', 'makeViewsOnDevice takes a CUDA device; use makeViews on the CPU');
  checkViewRange(grid, j0, j1, into);
  if (into && into.tensor.device !== dev) {
    throw new SslInvError('ERR_DEVICE_UNAVAILABLE', `makeViewsOnDevice: the output tensor is on ${into.tensor.device}, the views are made on ${dev}`);
  }
  const base = (into?.slot ?? 0) - j0;  // row of view j in the output: base + j
  const t = { resize: grid.resize, crop: grid.crop, mean: o.mean, std: o.std };
  const p = evalTransformPlan(img, t);
  const fullOpts = resizeCropNormalizeOptions(p.resize, p.crop, p.norm, img.channels);
  const out = into?.tensor ?? empty('float32', [j1 - j0, 3, grid.crop, grid.crop], dev);
  const owned: Tensor[] = [];
  const keep = (x: Tensor) => { owned.push(x); return x; };
  try {
    const host = keep(tensor(img.data, [img.height, img.width, img.channels]));
    const src = keep(host.to(dev));
    const whole = keep(src.reshape([1, img.height, img.width, img.channels]));  // the image as a batch of one
    const normalize = (views: Tensor, slot: number, opts: object) =>
      callNative('cudaResizeCropNormalizeViews', () => addon().cudaResizeCropNormalizeViews(views.handle, opts, out.handle, slot));
    const run = (v: ViewParams, family: string, op: string, params: unknown[]): Tensor => keep(wrap(callNative(`cuda ${op} views`, () => {
      const a = addon();
      if (family === 'color') return a.cudaColorViews(src.handle, op, params as number[]);
      if (family === 'geometric') return a.cudaGeometricViews(src.handle, op, params);
      return a.cudaBlurViews(src.handle, (v as { kernelSize: number }).kernelSize, params as number[]);
    })));
    if (into?.cleanSlot !== undefined) normalize(whole, into.cleanSlot, fullOpts);
    let j = j0;
    while (j < j1) {
      const v = grid.views[j]!;
      const d = deviceOp(v);
      // A run of consecutive views that one batched call makes, or CPU-built views of one op.
      let e = j + 1;
      if (d !== undefined) {
        while (e < j1 && deviceOp(grid.views[e]!)?.group === d.group) e++;
      } else {
        while (e < j1 && grid.views[e]!.op === v.op) e++;
      }
      if (d?.family === 'batch') {
        const one = d.op === 'identity' ? whole : keep(wrap(callNative(`cuda ${d.op}`, () => addon().cudaColorViews(whole.handle, d.op))));
        for (let q = j; q < e; q++) normalize(one, base + q, fullOpts);
      } else if (d?.family === 'crop' && (v as { size: number[] }).size.every((s) => s === grid.crop)) {
        // Crops differ in size per view: the binding crops them all, then resizes each into its slot.
        const crops = grid.views.slice(j, e).map((w) => (deviceOp(w) as { param: object }).param);
        const norm = resizeCropNormalizeOptions({ width: grid.crop, height: grid.crop }, { top: 0, left: 0, height: grid.crop, width: grid.crop }, p.norm, img.channels);
        callNative('cudaResizedCropViews', () => addon().cudaResizedCropViews(src.handle, crops,
          { outHeight: grid.crop, outWidth: grid.crop, mean: norm.mean, std: norm.std }, out.handle, base + j));
      } else if (d?.family === 'elastic') {
        for (let q = j; q < e; q += ELASTIC_VIEWS_PER_CALL) {
          const qe = Math.min(e, q + ELASTIC_VIEWS_PER_CALL);
          const views = deformViewsOnDevice(img, src, grid.views.slice(q, qe), (o.deformSeed ?? 0) + q, dev);
          try {
            normalize(views, base + q, fullOpts);
          } finally {
            views.dispose();
          }
        }
      } else if (d !== undefined && d.family !== 'crop') {
        const params = grid.views.slice(j, e).map((w) => (deviceOp(w) as { param: unknown }).param);
        normalize(run(v, d.family, d.op, params), base + j, fullOpts);
      } else {
        // CPU-built views (resized_crop to a size other than the crop's), uploaded as one uint8 batch.
        const imgs = [];
        for (let q = j; q < e; q++) imgs.push(applyView(img, grid.views[q]!, (o.deformSeed ?? 0) + q));
        const { height, width, channels } = imgs[0]!;
        const bytes = new Uint8Array(imgs.length * height * width * channels);
        imgs.forEach((im, q) => bytes.set(im.data, q * height * width * channels));
        const hostViews = keep(tensor(bytes, [imgs.length, height, width, channels]));
        const views = keep(hostViews.to(dev));
        const opts = v.op === 'resized_crop'
          ? resizeCropNormalizeOptions({ width, height }, { top: 0, left: 0, height: grid.crop, width: grid.crop }, p.norm, channels)
          : fullOpts;
        normalize(views, base + j, opts);
      }
      j = e;
    }
  } catch (err) {
    if (!into) out.dispose();
    throw err;
  } finally {
    for (const x of owned) x.dispose();
  }
  return out;
}
