/**
 * Devices: which exist, how users name them, and moving tensors between them.
 *
 * Names are PyTorch's: 'cpu', 'cuda' (= 'cuda:0') and 'cuda:N'. The addon always loads; whether it
 * has a CUDA backend (nvcc found at build time) and whether this machine has a usable GPU are separate
 * facts, both reported by `cudaInfo()`. Asking for a CUDA device that is not there is
 * ERR_DEVICE_UNAVAILABLE with the reason (no backend compiled, no driver, no such index), never a
 * silent fall-back to the CPU.
 *
 * 'auto' names the default device: the one SSL_INV_DEVICE names when it is set (cpu, cuda or cuda:N,
 * checked like --device), else the first GPU this build's kernels run on (compute capability 8.0 or
 * later, with code compiled for it), else the CPU. Every CLI
 * command's --device defaults to it, as does runDemo. The library's building blocks (tensors, models,
 * probes, the covariance accumulator) stay on the CPU unless given a device, as PyTorch's do, so a
 * program that mixes them never finds its tensors on two devices by surprise. In fp32 the CUDA path
 * gives the CPU's results to within 1.3e-7 relative (ResNet-50 features) and bit for bit for the
 * views (bench/results/2026-12-04-nvidia-h200*); the same precision is used on either device.
 */
import { SslInvError, callNative } from './errors';
import { native } from './native';
import { Tensor, wrap } from './tensor';

export interface CudaDeviceInfo {
  index: number;
  name: string;
  computeCapability: string;
  multiprocessors: number;
  totalMemory: number;
  /** Bytes of shared memory one block may use (the opt-in maximum: 227 KiB on 9.0, 99 KiB on 8.6). */
  sharedMemoryPerBlock: number;
  /** Whether this build's kernels run on it (compute capability 8.0 or later, and code compiled for it). */
  usable: boolean;
  /** Why not, when not usable (empty otherwise). */
  reason: string;
}

export interface CudaInfo {
  /** The addon was built with its CUDA backend. */
  compiled: boolean;
  /** The CUDA architectures its kernels were compiled for, e.g. "80-real,90-real,90-virtual". */
  architectures: string;
  /** The CUDA runtime linked in ("13.0"; empty without the backend). */
  runtimeVersion: string;
  /** The installed driver's CUDA version ("13.0"; empty without a driver or the backend). */
  driverVersion: string;
  /** CUDA devices present, usable or not (indices are CUDA's: cuda:N is devices[N]). */
  deviceCount: number;
  /** Why there is no usable device (empty when there is one). */
  reason: string;
  devices: CudaDeviceInfo[];
}

export type DeviceSpec = 'cpu' | `cuda:${number}`;

interface DeviceAddon {
  cudaInfo(): CudaInfo;
  toDevice(t: unknown, device: string): Tensor['handle'];
  synchronize(device: string): void;
  deviceMemoryStats(device: string): { inUseBytes: number; cachedBytes: number; cudaMallocs: number; reuses: number };
  releaseDeviceCache(device: string): void;
  convKernelLaunches(): Record<string, number>;
  convAutotune(on?: boolean): boolean;
  convTuning(): ConvTuningRecord[];
  clearConvTuning(): void;
}

function addon(): DeviceAddon {
  return native() as unknown as DeviceAddon;
}

let cachedInfo: CudaInfo | undefined;

/** The CUDA backend and devices of this process (probed once). */
export function cudaInfo(): CudaInfo {
  cachedInfo ??= callNative('cudaInfo', () => addon().cudaInfo());
  return cachedInfo;
}

/** True when a CUDA device can be used. */
export function cudaAvailable(): boolean {
  return cudaInfo().devices.some((d) => d.usable);
}

/** The environment variable that sets what 'auto' means. */
export const DEVICE_ENV = 'SSL_INV_DEVICE';

/**
 * What 'auto' resolves to, given SSL_INV_DEVICE's value and the CUDA probe (pure apart from the probe,
 * so that it is tested without a GPU). A set, non-empty override other than 'auto' wins and is returned
 * as given, for resolveDevice to check; the probe (which opens the CUDA driver) runs only without one.
 */
export function pickAutoDevice(override: string | undefined, probe: () => Pick<CudaInfo, 'devices'>): string {
  const o = override?.trim();
  if (o && o !== 'auto') return o;
  // The first device this build runs on: a machine whose cuda:0 is a card without code for it (an
  // older GPU beside a newer one) still gets the newer one.
  const first = probe().devices.find((d) => d.usable);
  return first ? `cuda:${first.index}` : 'cpu';
}

/** The default device: SSL_INV_DEVICE when set, else the first usable GPU, else 'cpu'. */
export function defaultDevice(): DeviceSpec {
  return resolveDevice(pickAutoDevice(process.env[DEVICE_ENV], cudaInfo), DEVICE_ENV);
}

/**
 * Checks a device name and that the device exists; returns its canonical form ('cpu' or 'cuda:N').
 * 'auto' is the default device (defaultDevice). `flag` names the option in messages (e.g. '--device').
 */
export function resolveDevice(name: string, flag = 'device'): DeviceSpec {
  if (name === 'cpu') return 'cpu';
  if (name === 'auto') return defaultDevice();
  const m = /^cuda(?::(\d{1,3}))?$/.exec(name);
  if (!m) throw new SslInvError('ERR_INVALID_ARGUMENT', `expected cpu, cuda, cuda:N or auto, got '${name}'`, { field: flag });
  const index = m[1] === undefined ? 0 : Number(m[1]);
  const info = cudaInfo();
  if (!info.compiled) {
    throw new SslInvError('ERR_DEVICE_UNAVAILABLE', `${name}: ${info.reason}; use cpu`, { field: flag });
  }
  if (info.deviceCount === 0) {
    throw new SslInvError('ERR_DEVICE_UNAVAILABLE', `${name}: no usable CUDA device (${info.reason}); use cpu`, { field: flag });
  }
  if (index >= info.deviceCount) {
    throw new SslInvError('ERR_DEVICE_UNAVAILABLE',
      `${name}: this machine has ${info.deviceCount} CUDA device(s), cuda:0 to cuda:${info.deviceCount - 1}`, { field: flag });
  }
  const device = info.devices[index];
  if (device && !device.usable) {
    throw new SslInvError('ERR_DEVICE_UNAVAILABLE', device.reason, { field: flag });  // the reason names the device
  }
  return `cuda:${index}`;
}

/** A copy of `t` on `device` (the same tensor's data, now in that device's memory). */
export function toDevice(t: Tensor, device: string): Tensor {
  const d = resolveDevice(device);
  return wrap(callNative('toDevice', () => addon().toDevice(t.handle, d)));
}

/** Waits until every kernel queued on the device has finished; reports their errors. */
export function synchronize(device: string): void {
  const d = resolveDevice(device);
  if (d !== 'cpu') callNative('synchronize', () => addon().synchronize(d));
}

/** The caching allocator's counters for a CUDA device. */
export function deviceMemoryStats(device: string): { inUseBytes: number; cachedBytes: number; cudaMallocs: number; reuses: number } {
  const d = resolveDevice(device);
  if (d === 'cpu') throw new SslInvError('ERR_INVALID_ARGUMENT', 'deviceMemoryStats takes a CUDA device');
  return callNative('deviceMemoryStats', () => addon().deviceMemoryStats(d));
}

/**
 * CUDA convolution launches so far in this process, by the kernel that ran: 'fp32 simt-bk8',
 * 'fp32 simt-bk16', 'tf32 mma-staged', 'tf32 mma-pipelined', 'bf16 mma-staged' (float32 tensors),
 * 'bf16 mma-pipelined' and 'bf16 wgmma' (bf16 in memory). The launchers count after resolving
 * 'auto' and their fallbacks, so the difference of two readings says which kernels a piece of work
 * ran (benchmarks record it beside their timings). Launches made while `convAutotune` tunes a new
 * problem are counted too. Empty in a build without CUDA.
 */
export function convKernelLaunches(): Record<string, number> {
  return callNative('convKernelLaunches', () => addon().convKernelLaunches());
}

/** One convolution problem tuned at run time (see `convAutotune`). */
export interface ConvTuningRecord {
  /** The kernels that may replace one another: 'fp32', 'tf32' or 'bf16-storage' (bf16 in memory). */
  family: 'fp32' | 'tf32' | 'bf16-storage';
  device: string;
  shape: { n: number; h: number; w: number; c: number; k: number; r: number; s: number; strideH: number; strideW: number; padH: number; padW: number };
  bias: boolean;
  residual: boolean;
  relu: boolean;
  /** The kernel 'auto' runs for this problem from now on (a convKernelLaunches() name). */
  chosen: string;
  /** Its block tile width in output channels, for the tensor-core kernels tuned at several widths. */
  chosenBlockN?: number;
  /**
   * In the order tried, the default first: each kernel (and tile width, where tuned) with its time
   * (ms per launch, min over 3 rounds) or why it was left out.
   */
  candidates: { kernel: string; blockN?: number; ms?: number; excluded?: string }[];
}

/**
 * Run-time tuning of the CUDA convolution's algo 'auto', as cudnn.benchmark does but never at the
 * cost of a bit: the first 'auto' convolution of each distinct problem (device, shape, epilogue,
 * which kernels can take its pointers) computes its result with the default kernel, runs the other
 * kernels of its precision (fp32 simt-bk8 / simt-bk16; tf32 mma-staged / mma-pipelined; bf16 in
 * memory mma-pipelined / wgmma; the last two of each at every block tile width that pads the output
 * channels no more than the default's) into scratch, leaves out any whose output differs in a single bit or
 * whose launch is refused, times the rest (CUDA events around back-to-back launches, 3 interleaved
 * rounds, min per kernel), and from then on runs the fastest (the default unless another is more
 * than 2% faster). So 'auto' gives the default kernel's bits on every card, at the speed of the
 * fastest kernel that agrees with it. The cost is about ten extra launches per kernel on the first
 * call of each problem (a network's first forward pass).
 *
 * On by default where the addon has CUDA, off with SSL_INV_CONV_AUTOTUNE=0 (then 'auto' is the
 * default kernel); off in the emulated-device test build. With an argument, sets it and returns the
 * previous setting (setting it needs the CUDA backend: ERR_DEVICE_UNAVAILABLE without); without one,
 * says whether it is on.
 */
export function convAutotune(on?: boolean): boolean {
  return callNative('convAutotune', () => addon().convAutotune(on));
}

/** The problems tuned so far in this process (see `convAutotune`), in key order. Empty without CUDA. */
export function convTuning(): ConvTuningRecord[] {
  return callNative('convTuning', () => addon().convTuning());
}

/** Forgets every tuned problem: the next 'auto' call of each tunes again (benchmarks, tests). */
export function clearConvTuning(): void {
  callNative('clearConvTuning', () => addon().clearConvTuning());
}

/** Returns the allocator's cached device memory to the driver. */
export function releaseDeviceCache(device: string): void {
  const d = resolveDevice(device);
  if (d !== 'cpu') callNative('releaseDeviceCache', () => addon().releaseDeviceCache(d));
}
