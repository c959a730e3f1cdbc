/**
 * `.pts` landmark files (the iBUG / 300-W format):
 *
 *     version: 1
 *     n_points:  68
 *     {
 *     446.000 91.000
 *     ...
 *     }
 *
 * The original reads them positionally (`readlines()[3:-1]`, then `float(x), float(y)` of each line
 * split on one space), which silently takes a wrong line when the file deviates. This parser checks the
 * structure instead, and every fault is an ERR_DATASET_LAYOUT naming the file and `line N`: a missing
 * or malformed `version:` / `n_points:` header, a missing `{` or `}`, fewer or more points than
 * `n_points` (or than the count the caller expects), a coordinate that is not a decimal number, NaN or
 * infinite values, and anything but blank lines after `}`. A UTF-8 byte-order mark, CRLF or CR line
 * ends, surrounding blanks and several blanks between x and y are accepted. Coordinates are parsed as
 * Python's float() parses them (correctly rounded to float64).
 */
import { promises as fsp } from 'node:fs';
import { SslInvError } from '../errors';

export interface PtsFile {
  file: string;
  /** The `version:` value (1). */
  version: string;
  /** Number of points. */
  count: number;
  /** x0, y0, x1, y1, ... in float64. */
  points: Float64Array;
}

export interface PtsOptions {
  /** The number of points the file must hold (300-W: 68). */
  expectedPoints?: number;
}

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const NONFINITE = /^[+-]?(?:nan|inf|infinity)$/i;

function err(file: string, line: number, message: string): SslInvError {
  return new SslInvError('ERR_DATASET_LAYOUT', message, { file, field: `line ${line}` });
}

function show(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}...` : s);
}

/** Parses the text (or UTF-8 bytes) of a `.pts` file. */
export function parsePts(input: string | Uint8Array, file: string, opts: PtsOptions = {}): PtsFile {
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      throw new SslInvError('ERR_DATASET_LAYOUT', 'not valid UTF-8 text; expected a .pts landmark file', { file });
    }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split(/\r\n|\r|\n/);
  // A final line end leaves one empty string; trailing blank lines are allowed after '}'.
  const at = (i: number): string => lines[i] ?? '';
  const hasLine = (i: number): boolean => i < lines.length && !(i === lines.length - 1 && lines[i] === '');

  if (!hasLine(0)) throw err(file, 1, "file is empty; expected 'version: 1'");
  const v = /^\s*version\s*:\s*(\S+)\s*$/.exec(at(0));
  if (!v) throw err(file, 1, `expected 'version: 1', found ${show(at(0))}`);
  if (!/^1(?:\.0*)?$/.test(v[1]!)) throw err(file, 1, `unsupported version ${show(v[1]!)}; expected 1`);
  if (!hasLine(1)) throw err(file, 2, "file ends; expected 'n_points: N'");
  const np = /^\s*n_points\s*:\s*(\d+)\s*$/.exec(at(1));
  if (!np) throw err(file, 2, `expected 'n_points: N', found ${show(at(1))}`);
  const count = Number(np[1]);
  if (!Number.isSafeInteger(count)) throw err(file, 2, `n_points ${np[1]} is too large`);
  if (opts.expectedPoints !== undefined && count !== opts.expectedPoints) {
    throw err(file, 2, `n_points is ${count}; expected ${opts.expectedPoints}`);
  }
  if (!hasLine(2)) throw err(file, 3, "file ends; expected '{'");
  if (at(2).trim() !== '{') throw err(file, 3, `expected '{', found ${show(at(2))}`);

  const points = new Float64Array(2 * count);
  for (let k = 0; k < count; k++) {
    const i = 3 + k;
    if (!hasLine(i)) throw err(file, i + 1, `file ends after ${k} of the ${count} points (n_points), without '}'`);
    const s = at(i).trim();
    if (s === '}') throw err(file, i + 1, `'}' after ${k} points; n_points says ${count}`);
    const parts = s.split(/[ \t]+/);
    if (parts.length !== 2 || s === '') throw err(file, i + 1, `expected two numbers 'x y', found ${show(at(i))}`);
    for (let c = 0; c < 2; c++) {
      const t = parts[c]!;
      if (NONFINITE.test(t)) throw err(file, i + 1, `coordinate ${show(t)} is not a finite number`);
      if (!NUMBER.test(t)) throw err(file, i + 1, `coordinate ${show(t)} is not a number`);
      points[2 * k + c] = Number(t);
    }
  }
  const close = 3 + count;
  if (!hasLine(close)) throw err(file, close + 1, `file ends after the ${count} points without the closing '}'`);
  const cs = at(close).trim();
  if (cs !== '}') {
    const looksLikePoint = /^\S+\s+\S+$/.test(cs);
    throw err(file, close + 1, looksLikePoint ? `more points than n_points (${count}); expected '}'` : `expected '}', found ${show(at(close))}`);
  }
  for (let i = close + 1; i < lines.length; i++) {
    if (at(i).trim() !== '') throw err(file, i + 1, `unexpected text after '}': ${show(at(i))}`);
  }
  return { file, version: v[1]!, count, points };
}

/** Reads and parses a `.pts` file. */
export async function readPts(file: string, opts: PtsOptions = {}): Promise<PtsFile> {
  let buf: Buffer;
  try {
    buf = await fsp.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SslInvError('ERR_DATASET_LAYOUT', 'missing landmark file', { file, cause: e });
    throw new SslInvError('ERR_FILE_READ', `cannot read: ${(e as Error).message}`, { file, cause: e });
  }
  return parsePts(buf, file, opts);
}
