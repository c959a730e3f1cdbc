/**
 * Where the probes' matrices live. The probes keep their data as row-major Float64Arrays on the host
 * and move a matrix to a CUDA device only for the GEMMs that run there (src/linalg.ts's dgemm runs
 * where its first operand lives); eigendecompositions, Cholesky solves and L-BFGS-B stay on the host.
 */
import { DeviceSpec } from '../device';
import { Tensor, tensor } from '../tensor';

/** A row-major float64 matrix as a tensor on `device` (a device copy frees its host staging at once). */
export function matrixOn(data: Float64Array, rows: number, cols: number, device: DeviceSpec): Tensor {
  const host = tensor(data, [rows, cols]);
  if (device === 'cpu') return host;
  try {
    return host.to(device);
  } finally {
    host.dispose();
  }
}

/** `t` itself when it is on the host, else a host copy (the device tensor is left to its owner). */
export function onHost(t: Tensor): Tensor {
  return t.device === 'cpu' ? t : t.to('cpu');
}
