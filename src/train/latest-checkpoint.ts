/**
 * `pretrain --resume latest`: the newest readable checkpoint of a run in its output directory
 * (RELIABILITY §5: resume from the newest *valid* checkpoint, never restart silently).
 *
 * Candidates are the files main_moco.py's naming gives this run (`checkpointName(model, arch, E)`,
 * `{model}[_w3]_{E:04d}.pth.tar`), newest epoch first. Each is read in full and checked as `--resume
 * FILE` would be (loadMocoCheckpoint); one that fails (a checkpoint truncated by a crash, a file
 * damaged since) is reported through `notice` with its error's code, and the one before it is
 * tried. Temp files of unfinished saves (`.{name}.{pid}.{random}.tmp`) never match.
 *
 * `check(file)`, when given, runs first and may refuse a candidate with ERR_CHECKPOINT_CORRUPT (the
 * CLI's: its sha256 differs from the one the run's summary recorded), which counts as unreadable.
 *
 * Outcomes: the checkpoint and its file; `undefined` when the directory holds no candidate (a first
 * run: the caller starts from scratch and says so); ERR_CHECKPOINT_CORRUPT, naming the directory and
 * every candidate's error, when candidates exist but none can be read (starting over would silently
 * throw away the run).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { SslInvError, isSslInvError } from '../errors';
import { Arch } from '../nn/resnet-spec';
import { LoadedMocoCheckpoint, checkpointName, loadMocoCheckpoint } from './moco-checkpoint';

export interface FoundCheckpoint {
  file: string;
  checkpoint: LoadedMocoCheckpoint;
}

/** The run's checkpoint files in `dir`, newest epoch (by name) first. */
export async function listRunCheckpoints(dir: string, model: string, arch: Arch): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return [];
    throw new SslInvError('ERR_FILE_READ', `cannot list the output directory: ${(e as Error).message}`, { file: dir, cause: e });
  }
  // checkpointName(model, arch, 0) is `{prefix}0000.pth.tar`: the prefix, then 4 or more digits.
  const prefix = checkpointName(model, arch, 0).replace(/0000\.pth\.tar$/, '');
  const epochOf = (name: string): number | undefined => {
    if (!name.startsWith(prefix) || !name.endsWith('.pth.tar')) return undefined;
    const digits = name.slice(prefix.length, -'.pth.tar'.length);
    return /^\d{4,}$/.test(digits) ? Number(digits) : undefined;
  };
  return names
    .map((name) => ({ name, epoch: epochOf(name) }))
    .filter((c): c is { name: string; epoch: number } => c.epoch !== undefined)
    .sort((a, b) => b.epoch - a.epoch)
    .map((c) => path.join(dir, c.name));
}

/** Errors by which loadMocoCheckpoint refuses a file's contents (or cannot read its bytes). */
function isUnusableCheckpoint(e: unknown): e is SslInvError {
  return isSslInvError(e) && (e.code.startsWith('ERR_CHECKPOINT_') || e.code === 'ERR_DTYPE_MISMATCH' ||
    e.code === 'ERR_SHAPE_MISMATCH' || e.code === 'ERR_FILE_READ' || e.code === 'ERR_NON_FINITE');
}

/** See the module comment. */
export async function findLatestMocoCheckpoint(dir: string, model: string, arch: Arch,
  notice: (line: string) => void = () => undefined, check?: (file: string) => Promise<void>): Promise<FoundCheckpoint | undefined> {
  const files = await listRunCheckpoints(dir, model, arch);
  const failures: string[] = [];
  for (const file of files) {
    try {
      await check?.(file);
      return { file, checkpoint: await loadMocoCheckpoint(file) };
    } catch (e) {
      // Only the loader's refusals of the file mean "this is not a usable checkpoint"; anything else
      // (a bug, out of memory) must not be mistaken for a damaged file.
      if (!isUnusableCheckpoint(e)) throw e;
      failures.push(`${e.code}: ${e.message}`);
      notice(`--resume latest: ${e.code}: ${e.message}; trying the checkpoint before it`);
    }
  }
  if (failures.length > 0) {
    throw new SslInvError('ERR_CHECKPOINT_CORRUPT',
      `--resume latest: none of the ${failures.length} checkpoint(s) of this run can be read, so the run is not started over ` +
      `(remove them, or pass --resume FILE): ${failures.join('; ')}`, { file: dir });
  }
  return undefined;
}
