/**
 * Shared pieces of the CLI: option parsers that throw ERR_USAGE with the flag's name, the device,
 * precision and seed options, and the error printer. Every command validates its flags here before
 * any work starts.
 */
import { InvalidArgumentError } from 'commander';
import { DeviceSpec, resolveDevice } from '../device';
import { SslInvError, isSslInvError } from '../errors';
import type { Precision } from '../ops';

export function positiveInt(flag: string): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
      throw new InvalidArgumentError(`${flag} takes an integer >= 1, got '${value}'`);
    }
    return n;
  };
}

/** Parses --seed: numpy's RandomState and the K-fold shuffle take a uint32. */
export function parseSeed(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw new SslInvError('ERR_USAGE', `--seed takes an integer from 0 to 2**32 - 1, got '${v}'`);
  return n;
}

export type DeviceName = DeviceSpec;

/**
 * Parses --device: cpu, cuda or cuda:N, checked against the devices present (a CUDA device that is
 * missing is ERR_DEVICE_UNAVAILABLE with the reason, never a silent fall-back to the CPU).
 */
export function parseDevice(value: string | undefined): DeviceName {
  if (value === undefined || value === 'cpu') return 'cpu';
  if (!/^cuda(:\d{1,3})?$/.test(value)) throw new SslInvError('ERR_USAGE', `--device takes cpu, cuda or cuda:N, got '${value}'`);
  return resolveDevice(value, '--device');
}

/** Parses --precision: fp32 anywhere; tf32 and bf16 need a CUDA device. */
export function parsePrecision(p: string, device: string): Precision {
  if (p === 'fp32') return p;
  if (p === 'tf32' || p === 'bf16') {
    if (device === 'cpu') {
      throw new SslInvError('ERR_DEVICE_UNAVAILABLE', `--precision ${p} needs a CUDA device (--device cuda); the CPU computes in fp32`);
    }
    return p;
  }
  throw new SslInvError('ERR_USAGE', `--precision takes fp32, tf32 or bf16, got '${p}'`);
}

/** Prints an error for a person and returns the exit code: 2 for usage errors, 1 otherwise. */
export function reportError(e: unknown, stream: NodeJS.WriteStream = process.stderr): number {
  if (isSslInvError(e)) {
    stream.write(`ssl-inv: error ${e.code}: ${e.message}\n`);
    return e.code === 'ERR_USAGE' ? 2 : 1;
  }
  const err = e as { code?: unknown; message?: unknown; stack?: unknown };
  stream.write(`ssl-inv: unexpected error: ${typeof err?.stack === 'string' ? err.stack : String(e)}\n`);
  return 1;
}
