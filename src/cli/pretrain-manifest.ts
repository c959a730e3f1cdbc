/**
 * The checkpoint list of `ssl-inv pretrain`'s pretrain-summary.json (RELIABILITY.md §5: "a manifest
 * with size and sha256"), kept across resumes.
 *
 *   "checkpoints": [{ "epoch": 0, "file": "default_0000.pth.tar", "sha256": "...", "bytes": 123 }, ...]
 *
 * `file` is relative to the output folder (which may be moved). A resumed run keeps the entries of
 * the epochs before the one it resumed at and adds its own; the summary's `epochs` still lists what
 * this invocation trained. On resume the recorded digests are checked (train/pretrain.ts,
 * recordedSha256): a checkpoint whose bytes changed since the run wrote it is not silently trained on.
 * Summaries written before this list existed give their `epochs[].checkpoint` / `checkpointSha256`.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { EpochRecord } from '../train/pretrain';

export interface CheckpointEntry {
  epoch: number;
  file: string;
  sha256: string;
  bytes: number;
}

export const SUMMARY_FILE = 'pretrain-summary.json';

function isEntry(e: unknown): e is CheckpointEntry {
  const x = e as Partial<CheckpointEntry> | null;
  return x !== null && typeof x === 'object' && Number.isSafeInteger(x.epoch) && typeof x.file === 'string' && x.file !== '' &&
    typeof x.sha256 === 'string' && /^[0-9a-f]{64}$/.test(x.sha256) && Number.isSafeInteger(x.bytes);
}

/**
 * The checkpoints the summary in `outDir` records; none when there is no summary. A summary that
 * cannot be read or parsed is told through `notice` and records nothing (the checkpoints themselves
 * are still checked by the loader).
 */
export async function readRecordedCheckpoints(outDir: string, notice: (line: string) => void): Promise<CheckpointEntry[]> {
  const file = path.join(outDir, SUMMARY_FILE);
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code !== 'ENOENT') notice(`cannot read ${file} (${(e as Error).message}): its checkpoint digests are not checked`);
    return [];
  }
  let summary: { checkpoints?: unknown; epochs?: unknown };
  try {
    summary = JSON.parse(text) as typeof summary;
  } catch (e) {
    notice(`${file} is not valid JSON (${(e as Error).message}): its checkpoint digests are not checked`);
    return [];
  }
  if (Array.isArray(summary.checkpoints)) return summary.checkpoints.filter(isEntry);
  // Older summaries: this invocation's epochs only, with absolute checkpoint paths.
  if (!Array.isArray(summary.epochs)) return [];
  return (summary.epochs as Partial<EpochRecord>[])
    .filter((r) => typeof r.checkpoint === 'string' && typeof r.checkpointSha256 === 'string' && Number.isSafeInteger(r.epoch))
    .map((r) => ({ epoch: r.epoch!, file: path.basename(r.checkpoint!), sha256: r.checkpointSha256!, bytes: -1 }));
}

/** Absolute path -> recorded sha256, for runPretraining's recordedSha256. */
export function recordedDigests(outDir: string, entries: readonly CheckpointEntry[]): Map<string, string> {
  return new Map(entries.map((e) => [path.resolve(outDir, e.file), e.sha256]));
}

/** The list to write: the earlier entries before `startEpoch`, then this invocation's checkpoints. */
export async function mergeCheckpoints(outDir: string, earlier: readonly CheckpointEntry[], startEpoch: number,
  records: readonly EpochRecord[]): Promise<CheckpointEntry[]> {
  const kept = await Promise.all(earlier.filter((e) => e.epoch < startEpoch).map(async (e) => {
    if (e.bytes >= 0) return e;
    // An older summary's entry: its size, if the file is still there.
    const bytes = await fsp.stat(path.resolve(outDir, e.file)).then((st) => st.size, () => -1);
    return { ...e, bytes };
  }));
  const added = await Promise.all(records.map(async (r) => ({
    epoch: r.epoch, file: path.relative(outDir, r.checkpoint), sha256: r.checkpointSha256, bytes: (await fsp.stat(r.checkpoint)).size,
  })));
  return [...kept, ...added].sort((a, b) => a.epoch - b.epoch);
}
