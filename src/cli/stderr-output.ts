/**
 * What the CLI writes on stderr, and in which form (results never go there; see main.ts).
 *
 * `--progress MODE` (any command; or SSL_INV_PROGRESS=MODE, the flag winning):
 *   auto   a progress bar on a terminal, a plain line every few seconds elsewhere (the default);
 *   lines  plain lines even on a terminal (a log file that is also watched);
 *   json   one JSON object per line, every line, for programs that follow a run: `progress` (label,
 *          done, total, unit, rate, eta_s, elapsed_s; about once a second), `done`, `notice`
 *          (message), `skipped` (file, code, message, ...), pretrain's `step` (epoch, step, steps,
 *          lr, loss, acc1, acc5, per_gpu, rate, eta_s, run_eta_s), `error` (code, message, file,
 *          field), `interrupted` (signal, removed). Numbers that are not finite are null;
 *   none   no progress (notices, skipped images and errors still appear).
 * `--quiet` (per command) silences progress and notices in every mode.
 */
import { SslInvError } from '../errors';

export const PROGRESS_MODES = ['auto', 'lines', 'json', 'none'] as const;
export type ProgressMode = (typeof PROGRESS_MODES)[number];

let flagMode: ProgressMode | undefined;

export function isProgressMode(value: string | undefined): value is ProgressMode {
  return (PROGRESS_MODES as readonly (string | undefined)[]).includes(value);
}

/** Parses a mode (the flag's or the environment's value); `source` names it in the error. */
export function parseProgressMode(value: string, source: string): ProgressMode {
  if (isProgressMode(value)) return value;
  throw new SslInvError('ERR_USAGE', `${source} takes ${PROGRESS_MODES.join(', ')}, got '${value}'`);
}

/** Sets the mode from --progress (main.ts); `undefined` goes back to the environment's or auto. */
export function setProgressMode(mode: ProgressMode | undefined): void {
  flagMode = mode;
}

/**
 * The mode in force: --progress, else SSL_INV_PROGRESS, else auto. Never throws (it runs on error
 * paths): main() refuses an unknown SSL_INV_PROGRESS before any command runs.
 */
export function progressMode(): ProgressMode {
  if (flagMode !== undefined) return flagMode;
  const env = process.env.SSL_INV_PROGRESS;
  return isProgressMode(env) ? env : 'auto';
}

export function jsonOutput(): boolean {
  return progressMode() === 'json';
}

/** Where the lines go: stderr, or a writer standing in for it (commander's error output, tests). */
export interface LineSink {
  write(text: string): unknown;
}

/** One JSON line on stderr; non-finite numbers become null (JSON has no NaN). */
export function emitEvent(type: string, fields: Record<string, unknown>, stream: LineSink = process.stderr): void {
  stream.write(`${JSON.stringify({ type, ...fields }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))}\n`);
}

/** A line for a person ("ssl-inv: ..."), or a `notice` event in json mode. */
export function writeNotice(message: string, stream: LineSink = process.stderr): void {
  if (jsonOutput()) emitEvent('notice', { message }, stream);
  else stream.write(`ssl-inv: ${message}\n`);
}
