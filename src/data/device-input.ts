/**
 * Image batches as a network takes them, on its device: float32 [N, 3, H, W], normalised.
 *
 * Batches can be made on the host in either form: float32 [N, 3, H, W] (ToTensor + Normalize done
 * there), or uint8 [N, H, W, 3] (the pixels before ToTensor; the loaders' and the augmentations'
 * `pixels: 'uint8'`). A uint8 batch is copied to the device as it is, a quarter of float32's bytes,
 * and normalised there by ops.normalizeImagesU8, which gives the float32 batch's bits; a float32
 * batch is moved. On the CPU a uint8 batch is normalised in place of the move.
 */
import { SslInvError } from '../errors';
import type { Normalization } from '../image-ops';
import { normalizeImagesU8 } from '../ops';
import { Tensor, moveTo } from '../tensor';

/** Whether batches for a network on `device` are best made as uint8 pixels (any CUDA device). */
export function pixelsFor(device: string | undefined): 'float32' | 'uint8' {
  return device !== undefined && device !== 'cpu' ? 'uint8' : 'float32';
}

/**
 * `batch` (a host tensor, float32 NCHW or uint8 NHWC) as float32 [N, 3, H, W] on `device`; `batch` is
 * freed, also when this fails. `norm` is the normalisation of a uint8 batch (a float32 one already
 * has it).
 */
export function deviceInput(batch: Tensor, norm: Normalization, device: string): Tensor {
  if (batch.dtype === 'float32') return moveTo(batch, device);
  if (batch.dtype !== 'uint8') {
    batch.dispose();
    throw new SslInvError('ERR_DTYPE_MISMATCH', `expected a float32 or uint8 image batch, got ${batch.dtype}`);
  }
  const there = moveTo(batch, device);
  try {
    return normalizeImagesU8(there, norm);
  } finally {
    there.dispose();
  }
}
