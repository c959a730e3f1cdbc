/**
 * Loads the native addon (build/Release/ssl_inv.node) and declares its raw interface.
 *
 * Only src/tensor.ts and src/ops.ts call into it; everything else goes through their typed wrappers,
 * which validate arguments and convert native errors into SslInvError. If the addon is missing or
 * does not load, the error says why and how to rebuild it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SslInvError } from './errors';

/** The object behind every Tensor: owned native memory with a dtype and a shape. */
export interface NativeTensor {
  readonly shape: number[];
  readonly dtype: string;
  readonly device: string;
  readonly nbytes: number;
  readonly disposed: boolean;
  dispose(): void;
  read(): Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array;
  write(src: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array): void;
  writeRows(src: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array, offset: number, rows: number, stride: number): void;
  reshape(shape: number[]): NativeTensor;
  clone(): NativeTensor;
}

export interface NativeConvOptions {
  outChannels: number;
  kernelH: number;
  kernelW: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  bias?: NativeTensor;
  residual?: NativeTensor;
  relu?: boolean;
  precision?: string;
  algo?: string;
}

export interface NativePoolOptions {
  kernelH: number;
  kernelW: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
}

export interface NativeInfo {
  isa: string;
  gemmKernel: string;
  threads: number;
  cudaCompiled: boolean;
}

export interface NativeAddon {
  empty(dtype: string, shape: number[], device?: string): NativeTensor;
  zeros(dtype: string, shape: number[], device?: string): NativeTensor;
  fromTypedArray(src: ArrayBufferView, shape: number[]): NativeTensor;
  memoryStats(): { liveBuffers: number; liveBytes: number };
  info(): NativeInfo;
  setNumThreads(n: number): void;
  gemm(a: NativeTensor, b: NativeTensor, opts?: {
    transA?: boolean; transB?: boolean; bias?: NativeTensor; residual?: NativeTensor; relu?: boolean;
  }): NativeTensor;
  convPackWeights(w: NativeTensor, scale?: NativeTensor): NativeTensor;
  conv2d(x: NativeTensor, packed: NativeTensor, opts: NativeConvOptions): NativeTensor;
  conv2dBf16Storage(x: NativeTensor, packed: NativeTensor, opts: NativeConvOptions): NativeTensor;
  toBfloat16(x: NativeTensor, padLastDimTo?: number): NativeTensor;
  bfloat16ToFloat32(x: NativeTensor): NativeTensor;
  /** bench/device only: ms per launch of the bf16-in-memory convolution kernel. */
  benchConv2dBf16Nhwc(x: NativeTensor, packed: NativeTensor, opts: NativeConvOptions, iters: number): number;
  maxPool2d(x: NativeTensor, opts: NativePoolOptions): NativeTensor;
  globalAvgPool(x: NativeTensor): NativeTensor;
  relu(x: NativeTensor): NativeTensor;
  add(a: NativeTensor, b: NativeTensor, relu?: boolean): NativeTensor;
  batchNormInference(x: NativeTensor, gamma: NativeTensor, beta: NativeTensor, mean: NativeTensor,
    variance: NativeTensor, eps: number): NativeTensor;
  batchNormFold(gamma: NativeTensor, beta: NativeTensor, mean: NativeTensor, variance: NativeTensor,
    eps: number): [NativeTensor, NativeTensor];
  linear(x: NativeTensor, w: NativeTensor, bias?: NativeTensor): NativeTensor;
  nchwToNhwc(x: NativeTensor): NativeTensor;
  nhwcToNchw(x: NativeTensor): NativeTensor;
}

/** The package root (where package.json and build/ are): the nearest ancestor with our package.json. */
export const packageRoot: string = (() => {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'ssl-invariances') return dir;
    } catch {
      // no package.json here: keep looking
    }
    if (path.dirname(dir) === dir) return path.resolve(__dirname, '..');
  }
})();

let cached: NativeAddon | undefined;

export function native(): NativeAddon {
  if (cached) return cached;
  const file = process.env.SSL_INV_ADDON ?? path.join(packageRoot, 'build', 'Release', 'ssl_inv.node');
  if (!fs.existsSync(file)) {
    throw new SslInvError('ERR_NATIVE_LOAD',
      'the native addon is not built. Run `npm install` (or `npm run build`) in the package folder; ' +
      'it needs a C++17 compiler and cmake >= 3.19.', { file });
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    cached = require(file) as NativeAddon;
  } catch (e) {
    throw new SslInvError('ERR_NATIVE_LOAD', `the native addon failed to load (${(e as Error).message}). ` +
      'Rebuild it with `npm run build`.', { file, cause: e });
  }
  return cached;
}

/**
 * The addon typed with one family of ops. An addon built from older sources lacks the family: that
 * is ERR_NATIVE_LOAD with the fix, checked on two of the family's functions (`markers`).
 */
export function nativeOps<T>(family: string, markers: readonly string[]): NativeAddon & T {
  const a = native() as NativeAddon & Record<string, unknown>;
  if (markers.some((m) => typeof a[m] !== 'function')) {
    throw new SslInvError('ERR_NATIVE_LOAD', `the native addon has no ${family} ops (built from older sources); ` +
      'rebuild it with `npm run build`');
  }
  return a as NativeAddon & T;
}
