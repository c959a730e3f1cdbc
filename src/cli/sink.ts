/** Progress bars and notices on stderr for the evaluation commands (see progress.ts). */
import { ProgressSink } from '../eval/synthetic-run';
import { createProgress } from './progress';
import { writeNotice } from './stderr-output';

export function stderrSink(quiet: boolean): ProgressSink {
  return {
    start: (label, total, unit) => createProgress({ label, total, unit, silent: quiet }),
    notice: (m) => { if (!quiet) writeNotice(m); },
  };
}
