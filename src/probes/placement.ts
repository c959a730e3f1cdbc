/**
 * Where the probes' matrices live. The probes keep their data as row-major Float64Arrays on the host
 * and move a matrix to a CUDA device only for the GEMMs that run there (src/linalg.ts's dgemm runs
 * where its first operand lives); eigendecompositions, Cholesky solves and L-BFGS-B stay on the host.
 */
import { DeviceSpec } from '../device';
import { Tensor, moveTo, tensor } from '../tensor';

export { moveTo };

/** A row-major float64 matrix as a tensor on `device`. */
export function matrixOn(data: Float64Array, rows: number, cols: number, device: DeviceSpec): Tensor {
  return moveTo(tensor(data, [rows, cols]), device);
}

/** `t` itself when it is on the host, else a host copy (the device tensor is left to its owner). */
export function onHost(t: Tensor): Tensor {
  return t.device === 'cpu' ? t : t.to('cpu');
}
