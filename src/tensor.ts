/**
 * Tensors: dense, C-ordered arrays in native memory.
 *
 * Memory is explicit: `dispose()` frees a tensor at once (the GC frees forgotten ones later, but
 * native memory is not pressure the GC feels quickly). `scope(fn)` disposes every tensor created
 * inside `fn` except those it returns, so a loop body cannot leak:
 *
 *     for (const batch of batches) {
 *       const features = scope(() => model.forward(batch));   // intermediates freed here
 *       ...; features.dispose();
 *     }
 *
 * Tensors also implement `Symbol.dispose`, for `using` declarations. Image and activation layouts are
 * documented where they are produced; the ResNet path keeps activations NHWC internally and takes and
 * returns PyTorch's NCHW at its edges.
 */
import { SslInvError, fromNativeError } from './errors';
import { resolveDevice } from './device';
import { native, NativeTensor } from './native';

/**
 * Element types. 'bfloat16' holds a bf16 network's activations on a CUDA device (ops.toBfloat16
 * makes them); its host view is the raw bits, a Uint16Array (toFloat32Array converts exactly).
 */
export type DType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'bfloat16';

export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array;

export interface TypedArrayOf {
  float32: Float32Array;
  float64: Float64Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  bfloat16: Uint16Array;
}

export const DTYPE_BYTES: Record<DType, number> = { float32: 4, float64: 8, int32: 4, int64: 8, uint8: 1, bfloat16: 2 };

export function dtypeOfArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof Uint16Array) {
    throw new SslInvError('ERR_DTYPE_MISMATCH', 'a Uint16Array is not a tensor type: bfloat16 tensors are made on a device by ops.toBfloat16');
  }
  throw new SslInvError('ERR_DTYPE_MISMATCH', 'unsupported typed array type');
}

const scopes: Set<Tensor>[] = [];

export class Tensor {
  /** @internal the native object; only src/ops.ts and this file touch it. */
  readonly handle: NativeTensor;

  /** @internal use the factories below. */
  constructor(handle: NativeTensor) {
    this.handle = handle;
    const top = scopes[scopes.length - 1];
    if (top) top.add(this);
  }

  get shape(): readonly number[] {
    return this.handle.shape;
  }

  get dtype(): DType {
    return this.handle.dtype as DType;
  }

  get device(): string {
    return this.handle.device;
  }

  /** Number of elements. */
  get size(): number {
    return this.handle.shape.reduce((a, b) => a * b, 1);
  }

  get nbytes(): number {
    return this.handle.nbytes;
  }

  get disposed(): boolean {
    return this.handle.disposed;
  }

  /** Frees the native memory now. Safe to call twice; later use throws ERR_TENSOR_DISPOSED. */
  dispose(): void {
    this.handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** A copy of the data as a typed array of the tensor's dtype. */
  toArray(): TypedArray {
    try {
      return this.handle.read();
    } catch (e) {
      throw fromNativeError(e);
    }
  }

  /** A copy as Float32Array (bfloat16 widened exactly); throws for other dtypes. */
  toFloat32Array(): Float32Array {
    if (this.dtype === 'bfloat16') {
      const bits = this.toArray() as Uint16Array;
      const out = new Float32Array(bits.length);
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < bits.length; i++) u[i] = bits[i]! << 16;
      return out;
    }
    if (this.dtype !== 'float32') {
      throw new SslInvError('ERR_DTYPE_MISMATCH', `expected a float32 tensor but got ${this.dtype}`);
    }
    return this.toArray() as Float32Array;
  }

  /** Overwrites the data from a typed array of the same dtype and length. */
  write(src: TypedArray): void {
    try {
      this.handle.write(src);
    } catch (e) {
      throw fromNativeError(e);
    }
  }

  /**
   * Overwrites part of the data, in the flat row-major order: `src` holds `rows` rows (default 1) of
   * src.length / rows elements, and row r goes to elements offset + r * stride onwards (stride
   * default: the row's length, so one contiguous run). On a device this is one strided copy from
   * the host, e.g. a block of columns of a [rows, cols] matrix with stride = cols. Out-of-range or
   * overlapping rows are refused (ERR_SHAPE_MISMATCH / ERR_INVALID_ARGUMENT) before anything is
   * written.
   */
  writeRows(src: TypedArray, region: { offset: number; rows?: number; stride?: number }): void {
    const rows = region.rows ?? 1;
    // The default is an integer whatever the sizes, so a length that does not split into rows is
    // reported as that, not as a bad stride.
    const stride = region.stride ?? (Number.isInteger(rows) && rows > 0 ? Math.floor(src.length / rows) : 0);
    try {
      this.handle.writeRows(src, region.offset, rows, stride);
    } catch (e) {
      throw fromNativeError(e);
    }
  }

  /** A view with another shape of the same element count; shares memory with this tensor. */
  reshape(shape: readonly number[]): Tensor {
    try {
      return new Tensor(this.handle.reshape([...shape]));
    } catch (e) {
      throw fromNativeError(e);
    }
  }

  /**
   * A copy of this tensor on `device` ('cpu', 'cuda', 'cuda:N'); this tensor itself is unchanged.
   * Copies to the CPU return once the data is there.
   */
  to(device: string): Tensor {
    const d = resolveDevice(device);
    try {
      return new Tensor((native() as unknown as { toDevice(t: NativeTensor, d: string): NativeTensor }).toDevice(this.handle, d));
    } catch (e) {
      throw fromNativeError(e);
    }
  }

  clone(): Tensor {
    try {
      return new Tensor(this.handle.clone());
    } catch (e) {
      throw fromNativeError(e);
    }
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}], ${this.device})`;
  }
}

function checkShape(shape: readonly number[]): number[] {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `shape must be an array of integers >= 0, got ${JSON.stringify(shape)}`);
  }
  return [...shape];
}

/** A tensor holding a copy of `data`, with the dtype of the typed array. */
export function tensor(data: TypedArray, shape: readonly number[]): Tensor {
  try {
    return new Tensor(native().fromTypedArray(data, checkShape(shape)));
  } catch (e) {
    throw fromNativeError(e);
  }
}

/**
 * A host tensor moved to `device`: itself on the CPU, else a device copy (the host tensor is then
 * disposed, also when the copy fails). For values made on the host that belong on a device.
 */
export function moveTo(host: Tensor, device: string): Tensor {
  if (device === 'cpu') return host;
  try {
    return host.to(device);
  } finally {
    host.dispose();
  }
}

/** An uninitialised tensor, on the CPU or on `device` ('cuda', 'cuda:N'). */
export function empty(dtype: DType, shape: readonly number[], device = 'cpu'): Tensor {
  const d = resolveDevice(device);
  try {
    return new Tensor(native().empty(dtype, checkShape(shape), d));
  } catch (e) {
    throw fromNativeError(e);
  }
}

/** A tensor of zeros, on the CPU or on `device`. */
export function zeros(dtype: DType, shape: readonly number[], device = 'cpu'): Tensor {
  const d = resolveDevice(device);
  try {
    return new Tensor(native().zeros(dtype, checkShape(shape), d));
  } catch (e) {
    throw fromNativeError(e);
  }
}

/** Wraps a raw native result (used by src/ops.ts). @internal */
export function wrap(handle: NativeTensor): Tensor {
  return new Tensor(handle);
}

function collect(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || value === null || typeof value !== 'object') return;
  if (value instanceof Tensor) {
    out.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

/**
 * Runs `fn` and disposes every tensor created during it, except tensors found in its return value
 * (directly, or inside arrays, Maps and plain objects), which move to the enclosing scope.
 * Synchronous functions only: an async function's later tensors would escape the scope.
 */
export function scope<T>(fn: () => T): T {
  const created = new Set<Tensor>();
  scopes.push(created);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of created) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of created) t.dispose();
    throw new SslInvError('ERR_INVALID_ARGUMENT', 'scope() takes a synchronous function');
  }
  const kept = new Set<Tensor>();
  collect(result, kept);
  const parent = scopes[scopes.length - 1];
  for (const t of created) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Moves a tensor out of the current scope so it survives it. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

/** Live native buffers and bytes, for leak checks. */
export function memoryStats(): { liveBuffers: number; liveBytes: number } {
  return native().memoryStats();
}
