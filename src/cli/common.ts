/**
 * Shared pieces of the CLI: option parsers that throw ERR_USAGE with the flag's name, the device,
 * precision, activation-storage and seed options, and the error printer. Every command validates
 * its flags here before any work starts.
 */
import { InvalidArgumentError, Option } from 'commander';
import { DEVICE_ENV, DeviceSpec, cudaInfo, defaultDevice, resolveDevice } from '../device';
import { SslInvError, isSslInvError } from '../errors';
import type { ActivationStorage } from '../nn/resnet';
import type { Precision } from '../ops';
import { emitEvent, jsonOutput, writeNotice } from './stderr-output';

export function positiveInt(flag: string): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
      throw new InvalidArgumentError(`${flag} takes an integer >= 1, got '${value}'`);
    }
    return n;
  };
}

/** An option parser for integers >= 0 (decimal digits only); ERR_USAGE naming the flag otherwise. */
export function nonNegativeInt(flag: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new SslInvError('ERR_USAGE', `${flag} takes an integer >= 0, got '${v}'`);
    return n;
  };
}

/**
 * Parses --seed: numpy's RandomState, the K-fold shuffle and our generators take a uint32. Decimal
 * digits only (surrounding blanks allowed, as Python's int()): JavaScript's Number() would also take
 * '' (as 0), '0x10' and '1e3', and a seed of 2**32 or more would wrap to another run's seed.
 */
export function parseSeed(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n > 0xffffffff) {
    throw new SslInvError('ERR_USAGE', `--seed takes an integer from 0 to 2**32 - 1, got '${v}'`);
  }
  return n;
}

export type DeviceName = DeviceSpec;

/** The --device option's help and default, the same in every command. */
export const DEVICE_DEFAULT = 'auto';
export function deviceHelp(what: string): string {
  return `cpu, cuda, cuda:N or auto (${DEVICE_ENV} if set, else the first usable GPU, else cpu); ${what}`;
}

/**
 * Parses --device: cpu, cuda, cuda:N or auto (also when the flag is absent), checked against the
 * devices present (a CUDA device that is missing is ERR_DEVICE_UNAVAILABLE with the reason, never a
 * silent fall-back to the CPU). When auto picks a GPU, `announce` is told which, so that nobody is
 * surprised by where the work ran.
 */
export function parseDevice(value: string | undefined, announce?: (line: string) => void): DeviceName {
  if (value === undefined || value === 'auto') {
    const d = defaultDevice();
    if (d !== 'cpu' && announce) {
      const name = cudaInfo().devices.find((x) => `cuda:${x.index}` === d)?.name ?? 'GPU';
      const why = process.env[DEVICE_ENV]?.trim() ? `${DEVICE_ENV}=${process.env[DEVICE_ENV]!.trim()}` : 'a GPU is present';
      announce(`device ${d} (${name}; ${why}); --device cpu computes on the CPU`);
    }
    return d;
  }
  if (value === 'cpu') return 'cpu';
  if (!/^cuda(:\d{1,3})?$/.test(value)) throw new SslInvError('ERR_USAGE', `--device takes cpu, cuda, cuda:N or auto, got '${value}'`);
  return resolveDevice(value, '--device');
}

/** An announce callback for parseDevice: one line on stderr, unless quiet. */
export function announceOnStderr(quiet: boolean | undefined): ((line: string) => void) | undefined {
  return quiet ? undefined : (line) => writeNotice(line);
}

/** Parses --precision: fp32 anywhere; tf32 and bf16 need a CUDA device. */
export function parsePrecision(p: string, device: string): Precision {
  if (p === 'fp32') return p;
  if (p === 'tf32' || p === 'bf16') {
    if (device === 'cpu') {
      throw new SslInvError('ERR_DEVICE_UNAVAILABLE', `--precision ${p} needs a CUDA device (--device cuda, or auto on a machine with a GPU); the CPU computes in fp32`);
    }
    return p;
  }
  throw new SslInvError('ERR_USAGE', `--precision takes fp32, tf32 or bf16, got '${p}'`);
}

/** A network's arithmetic as the CLI chose it: convolution precision and activation storage. */
export interface NetworkArithmetic {
  precision: Precision;
  activations: ActivationStorage;
}

/** --precision, the same in every command that runs networks (fp32: the faithful arithmetic). */
export function precisionOption(): Option {
  return new Option('--precision <p>', 'convolution arithmetic: fp32, tf32 or bf16 (tf32 and bf16 need a CUDA device)').default('fp32');
}

/** --activations, beside --precision (float32 unless --precision bf16 asks for bfloat16). */
export function activationsOption(): Option {
  return new Option('--activations <storage>', 'activations between layers: float32, or bfloat16 with --precision bf16 '
    + '(half the memory traffic; each layer\'s output rounded to bf16)').choices(['float32', 'bfloat16']).default('float32');
}

/** Parses --precision and --activations, for networks on `device`. */
export function parseArithmetic(f: { precision: string; activations: string }, device: string): NetworkArithmetic {
  const precision = parsePrecision(f.precision, device);
  if (f.activations !== 'float32' && f.activations !== 'bfloat16') {
    throw new SslInvError('ERR_USAGE', `--activations takes float32 or bfloat16, got '${f.activations}'`);
  }
  if (f.activations === 'bfloat16' && precision !== 'bf16') {
    throw new SslInvError('ERR_USAGE', `--activations bfloat16 needs --precision bf16 (got --precision ${precision}, whose convolutions read float32)`);
  }
  return { precision, activations: f.activations };
}

/** Prints an error for a person and returns the exit code: 2 for usage errors, 1 otherwise. */
export function reportError(e: unknown, stream: NodeJS.WriteStream = process.stderr): number {
  if (isSslInvError(e)) {
    if (jsonOutput()) {
      emitEvent('error', { code: e.code, message: e.message, ...(e.file !== undefined ? { file: e.file } : {}),
        ...(e.field !== undefined ? { field: e.field } : {}) }, stream);
    } else {
      stream.write(`ssl-inv: error ${e.code}: ${e.message}\n`);
    }
    return e.code === 'ERR_USAGE' ? 2 : 1;
  }
  const err = e as { code?: unknown; message?: unknown; stack?: unknown };
  const text = typeof err?.stack === 'string' ? err.stack : String(e);
  if (jsonOutput()) emitEvent('error', { code: null, message: `unexpected error: ${text}` }, stream);
  else stream.write(`ssl-inv: unexpected error: ${text}\n`);
  return 1;
}

/** The eval commands' --json flag: results as JSON lines on stdout instead of the original scripts' lines. */
export const JSON_HELP = "print each result as one JSON line on stdout (summary and the result file) instead of the original script's line";

/** One result as a JSON line on stdout (--json): keys in the order given, numbers as JavaScript writes them. */
export function printJsonLine(value: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
