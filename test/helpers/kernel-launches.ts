// The CUDA convolution kernels a piece of work launched: convKernelLaunches() (src/device.ts) read
// before and after it. The op table asserts dispatch with it; bench/device labels timings with it.
// Also how both name a run-time tuning candidate (convTuning()): its kernel, and its tile width
// where the kernel is tuned at several.
import { convKernelLaunches } from '../../src/device';

/** What `fn` returned, and the launches it made by kernel (kernels it did not launch left out). */
export function withKernelLaunches<R>(fn: () => R): { result: R; launched: Record<string, number> } {
  const before = convKernelLaunches();
  const result = fn();
  const after = convKernelLaunches();
  const launched: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v !== before[k]) launched[k] = v - (before[k] ?? 0);
  return { result, launched };
}

/** A tuning candidate's name: 'tf32 mma-pipelined bn64', or the kernel alone when it has one width. */
export function tuningLabel(c: { kernel: string; blockN?: number }): string {
  return c.blockN ? `${c.kernel} bn${c.blockN}` : c.kernel;
}
