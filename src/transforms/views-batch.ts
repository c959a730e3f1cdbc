/**
 * The views of several images in one tensor, image-major: rows c + [i * (j1 - j0), (i + 1) * (j1 - j0))
 * hold views [j0, j1) of image i, as float32 [c + images * (j1 - j0), 3, crop, crop] on the CPU or a
 * CUDA device. With `withClean`, c = images and row i first holds image i's clean input (the grid's
 * Resize -> CenterCrop, the options' normalisation: what preprocess() gives), so an image's clean
 * feature comes out of the same forward pass as its views; otherwise c = 0. Each image is uploaded
 * once (as uint8, on a device) and its views are written straight into their rows; the values are
 * those of preprocess and makeViews / makeViewsOnDevice for each image alone.
 *
 * Why: transforms with few views (the flips, grayscale, invert, equalize: k = 2; posterize: 7) would
 * otherwise give the network batches of 2 to 7 images; batching the views of many source images
 * gives it full batches. The network's per-image outputs do not depend on the batch (each output
 * element is reduced in the same order whatever the batch size; test/eval/synthetic-batch.test.ts).
 */
import { SslInvError } from '../errors';
import { ImageU8 } from '../image-ops';
import { empty, Tensor } from '../tensor';
import { resolveDevice } from '../device';
import { TransformGrid } from './grid';
import { checkViewRange, makeViews, ViewOptions } from './views';
import { makeViewsOnDevice } from './views-device';

/** Views [j0, j1) of each image; `opts[i]` are image i's options (its deform seed and normalisation). */
export function makeViewsOfImages(imgs: readonly ImageU8[], grid: TransformGrid, j0: number, j1: number, opts: readonly ViewOptions[],
  device = 'cpu', withClean = false): Tensor {
  if (opts.length !== imgs.length) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `makeViewsOfImages: ${opts.length} option sets for ${imgs.length} images`);
  }
  checkViewRange(grid, j0, j1);
  const dev = resolveDevice(device);
  const per = j1 - j0, c = withClean ? imgs.length : 0;
  const out = empty('float32', [c + imgs.length * per, 3, grid.crop, grid.crop], dev);
  try {
    imgs.forEach((img, i) => {
      const into = { tensor: out, slot: c + i * per, ...(withClean ? { cleanSlot: i } : {}) };
      if (dev === 'cpu') makeViews(img, grid, j0, j1, opts[i]!, into);
      else makeViewsOnDevice(img, grid, j0, j1, opts[i]!, dev, into);
    });
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}
