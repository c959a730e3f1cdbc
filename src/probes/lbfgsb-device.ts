/**
 * L-BFGS-B vectors on a CUDA device (see lbfgsb-vectors.ts): one float64 device tensor
 * [(7 + 2m) * n] holds x, g, z, r, d, t, the last evaluated x and the memory columns, and each
 * vector step is one kernel (native/cuda/lbfgsb.cuh). Per iteration only scalars come back (the
 * dot products, max |g|, whether x moved) and the 2m coefficients of subsm go up, so an objective
 * that also runs on the device (logistic.ts) never moves an n-vector across the bus.
 *
 * The elementwise steps compute the host's expressions exactly; dot products are reduced in a fixed
 * tree order instead of sequentially, so a device solver agrees with the host solver to rounding.
 */
import { callNative } from '../errors';
import { native, NativeTensor } from '../native';
import { keep, Tensor, zeros } from '../tensor';
import { FIXED_SLOTS, G, LAST_X, LbfgsbVectors, R, X, Z } from './lbfgsb-vectors';

interface LbfgsbAddon {
  cudaLbfgsbVec(state: NativeTensor, n: number, op: number, dst: number, a: number, b: number, s: number): void;
  cudaLbfgsbDots(state: NativeTensor, n: number, len: number, x: number, ys: number[]): Float64Array;
  cudaLbfgsbMaxAbsDiffers(state: NativeTensor, n: number, a: number, b: number): Float64Array;
  cudaLbfgsbSubsm(state: NativeTensor, n: number, d: number, z: number, wy: number[], ws: number[], a: number[], b: number[], theta: number): void;
  cudaLbfgsbRead(state: NativeTensor, n: number, slot: number): Float64Array;
  cudaLbfgsbWrite(state: NativeTensor, n: number, slot: number, values: Float64Array): void;
}

function addon(): LbfgsbAddon {
  return native() as unknown as LbfgsbAddon;
}

const OP = { copy: 0, neg: 1, sub: 2, scale: 3, axpy: 4 } as const;

export class DeviceLbfgsbVectors implements LbfgsbVectors {
  /** float64 [(7 + 2m) * n] on the device; slot s at [s * n, (s + 1) * n). */
  readonly state: Tensor;
  private evaluated = false;

  constructor(readonly n: number, readonly m: number, readonly device: string) {
    this.state = keep(zeros('float64', [(FIXED_SLOTS + 2 * m) * n], device));
  }

  private vec(op: number, dst: number, a: number, b: number, s: number): void {
    callNative('L-BFGS-B on the device', () => addon().cudaLbfgsbVec(this.state.handle, this.n, op, dst, a, b, s));
  }

  copy(dst: number, src: number): void { this.vec(OP.copy, dst, src, -1, 0); }
  negate(dst: number, src: number): void { this.vec(OP.neg, dst, src, -1, 0); }
  sub(dst: number, a: number, b: number): void { this.vec(OP.sub, dst, a, b, 0); }
  scale(dst: number, a: number, s: number): void { this.vec(OP.scale, dst, a, -1, s); }
  axpy(dst: number, a: number, s: number, b: number): void { this.vec(OP.axpy, dst, a, b, s); }

  dot(a: number, b: number): number {
    return this.dotsOf(this.n, a, [b])[0]!;
  }

  dots(x: number, ys: readonly number[], out: Float64Array): void {
    out.set(this.dotsOf(this.n, x, ys));
  }

  /** Dot products of the first `len` elements of x with each of ys. */
  dotsOf(len: number, x: number, ys: readonly number[]): Float64Array {
    return callNative('L-BFGS-B on the device', () => addon().cudaLbfgsbDots(this.state.handle, this.n, len, x, [...ys]));
  }

  subsmUpdate(wy: readonly number[], ws: readonly number[], a: ArrayLike<number>, b: ArrayLike<number>, theta: number): void {
    callNative('L-BFGS-B on the device', () => addon().cudaLbfgsbSubsm(this.state.handle, this.n, R, Z, [...wy], [...ws],
      Array.from(a), Array.from(b), theta));
  }

  projgr(): number {
    return callNative('L-BFGS-B on the device', () => addon().cudaLbfgsbMaxAbsDiffers(this.state.handle, this.n, G, -1))[0]!;
  }

  takeEvaluatedX(): boolean {
    const changed = !this.evaluated ||
      callNative('L-BFGS-B on the device', () => addon().cudaLbfgsbMaxAbsDiffers(this.state.handle, this.n, X, LAST_X))[1] === 1;
    if (changed) this.copy(LAST_X, X);
    this.evaluated = true;
    return changed;
  }

  read(slot: number): Float64Array {
    return callNative('L-BFGS-B on the device', () => addon().cudaLbfgsbRead(this.state.handle, this.n, slot));
  }

  write(slot: number, values: ArrayLike<number>): void {
    const v = values instanceof Float64Array ? values : Float64Array.from(values);
    callNative('L-BFGS-B on the device', () => addon().cudaLbfgsbWrite(this.state.handle, this.n, slot, v));
  }

  dispose(): void {
    this.state.dispose();
  }
}
