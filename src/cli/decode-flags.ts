/**
 * --decode-workers N, --decode-memory-mb M, --decode-timeout S: where a command decodes its images
 * (RELIABILITY.md §4); --max-pixels P: the largest image it decodes (width x height from the header;
 * default Pillow's 178,956,970, above which the original's Image.open raises too).
 *
 *   0 workers (the default): in this process, on libuv's threads; the fastest.
 *   N >= 1: in N separate processes (data/decode-pool.ts), each with its data segment capped at M MiB
 *   (Linux) and each file given at most S seconds. A decompression bomb, a codec crash or a hang then
 *   costs a decoder process, not the run: the file is refused with a coded error naming it (skipped
 *   with --on-error skip where the command has it). The pixels are the same either way; moving them
 *   between processes costs some speed (bench:decode-pool measures it).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_PIXEL_LIMIT, DecodeOptions } from '../data/decode';
import { DecodePool } from '../data/decode-pool';
import { SslInvError } from '../errors';
import { nonNegativeInt, positiveInt } from './common';

export interface DecodeFlags {
  maxPixels?: number;
  decodeWorkers: number;
  decodeMemoryMb?: number;
  decodeTimeout?: number;
}

function positiveNumber(flag: string): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
      throw new InvalidArgumentError(`${flag} takes a number of seconds > 0, got '${value}'`);
    }
    return n;
  };
}

/** Adds the four flags to a command that decodes image files. */
export function addDecodeOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--max-pixels <p>', 'refuse images of more than p pixels (width x height, read from the header before decoding; ' +
      `default ${DEFAULT_PIXEL_LIMIT}, Pillow's DecompressionBombError limit): set it to the data set's real maximum`).argParser(positiveInt('--max-pixels')))
    .addOption(new Option('--decode-workers <n>', 'decode images in n separate memory-capped processes (0: in this process, the fastest); ' +
      'a file that crashes or exhausts its decoder is then refused by name instead of ending the run').argParser(nonNegativeInt('--decode-workers')).default(0))
    .addOption(new Option('--decode-memory-mb <m>', 'with --decode-workers: cap on each decoder process\'s memory, MiB (Linux)')
      .argParser(nonNegativeInt('--decode-memory-mb')))
    .addOption(new Option('--decode-timeout <s>', 'with --decode-workers: seconds a file may take to decode before its decoder is killed')
      .argParser(positiveNumber('--decode-timeout')));
}

export interface OpenedDecoder {
  /** The DecodeOptions to pass to the evaluators (undefined: the defaults, in this process). */
  decode: DecodeOptions | undefined;
  /** Ends the decoder processes (always call it, in a finally). */
  close(): Promise<void>;
}

/** ERR_USAGE for flags that do not go together; commands call it with their other checks, before any work. */
export function checkDecodeFlags(f: DecodeFlags): void {
  if ((f.decodeWorkers ?? 0) === 0) {
    for (const [flag, v] of [['--decode-memory-mb', f.decodeMemoryMb], ['--decode-timeout', f.decodeTimeout]] as const) {
      if (v !== undefined) throw new SslInvError('ERR_USAGE', `${flag} needs --decode-workers N (N >= 1): images are decoded in this process otherwise`);
    }
  } else if (f.decodeMemoryMb !== undefined && f.decodeMemoryMb < 256) {
    throw new SslInvError('ERR_USAGE', `--decode-memory-mb ${f.decodeMemoryMb}: a decoder process needs at least 256 MiB (Node and sharp take about 200)`);
  }
}

/**
 * The decode options the flags ask for, with a DecodePool when --decode-workers N >= 1 (its processes
 * start with the first decode); `notice` is told of each decoder process that died.
 */
export function openDecoder(f: DecodeFlags, notice: (line: string) => void): OpenedDecoder {
  checkDecodeFlags(f);
  const workers = f.decodeWorkers ?? 0;
  const limit: DecodeOptions = f.maxPixels !== undefined ? { limitInputPixels: f.maxPixels } : {};
  if (workers === 0) return { decode: f.maxPixels !== undefined ? limit : undefined, close: async () => undefined };
  const pool = new DecodePool({
    workers,
    ...(f.decodeMemoryMb !== undefined ? { memoryMiB: f.decodeMemoryMb } : {}),
    ...(f.decodeTimeout !== undefined ? { timeoutSeconds: f.decodeTimeout } : {}),
    onNotice: notice,
  });
  return { decode: { ...limit, decoder: pool }, close: () => pool.close() };
}
