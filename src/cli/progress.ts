/**
 * Progress on stderr, with rate and ETA. On a terminal: a cli-progress bar. Elsewhere (CI, pipes,
 * log files), or with --progress lines: one plain line every few seconds and a final line, so logs
 * stay readable. --progress json: `progress` events about once a second and a `done` event;
 * --progress none: nothing (stderr-output.ts). Results never go to stderr; progress never goes to
 * stdout.
 */
import { SingleBar } from 'cli-progress';
import { emitEvent, progressMode } from './stderr-output';

export interface Progress {
  /** Advances by `n` items. */
  tick(n: number): void;
  /** Ends the bar and prints a summary line. */
  done(): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  unit: string;
  /** Disables all output (e.g. --quiet). */
  silent?: boolean;
  stream?: NodeJS.WriteStream;
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.round((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const mode = progressMode();
  if (opts.silent || mode === 'none') return { tick() {}, done() {} };
  const start = Date.now();
  let count = 0;
  const rate = () => count / Math.max(1e-3, (Date.now() - start) / 1000);
  // Counts ticks and calls `report` at most once per `everyMs` (the plain-line and json forms).
  const throttled = (everyMs: number, report: () => void) => {
    let last = start;
    return (n: number) => {
      count += n;
      const now = Date.now();
      if (now - last >= everyMs) {
        last = now;
        report();
      }
    };
  };
  const summary = () =>
    `${opts.label}: ${count}/${opts.total} ${opts.unit} in ${formatSeconds((Date.now() - start) / 1000)} ` +
    `(${rate().toFixed(1)} ${opts.unit}/s)\n`;

  if (mode === 'json') {
    const fields = () => {
      const elapsed = (Date.now() - start) / 1000;
      const r = rate();
      return { label: opts.label, done: count, total: opts.total, unit: opts.unit, rate: Number(r.toFixed(3)),
        eta_s: Number(((opts.total - count) / r).toFixed(3)), elapsed_s: Number(elapsed.toFixed(3)) };
    };
    return {
      tick: throttled(1000, () => emitEvent('progress', fields(), stream)),
      done() {
        emitEvent('done', fields(), stream);
      },
    };
  }

  if (stream.isTTY && mode === 'auto') {
    const bar = new SingleBar({
      stream,
      format: `${opts.label} [{bar}] {value}/{total} ${opts.unit} | {rate} ${opts.unit}/s | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 20,
    });
    bar.start(opts.total, 0, { rate: '0.0' });
    return {
      tick(n) {
        count += n;
        bar.update(count, { rate: rate().toFixed(1) });
      },
      done() {
        bar.stop();
        stream.write(summary());
      },
    };
  }

  return {
    tick: throttled(5000, () => {
      const eta = (opts.total - count) / rate();
      stream.write(`${opts.label}: ${count}/${opts.total} ${opts.unit} | ${rate().toFixed(1)} ${opts.unit}/s | ETA ${formatSeconds(eta)}\n`);
    }),
    done() {
      stream.write(summary());
    },
  };
}
