// The child process of test/io/atomic-write.test.ts's read-only-directory test, for when the test
// runs as root (root, with CAP_DAC_OVERRIDE, may write into any directory, so the parent cannot see
// the refusal itself). Usage: node <ts loader> read-only-dir-child.ts DIR
//
// It loads the writers first (while the sources are still readable), then, if started as root on
// Linux, drops to nobody (uid/gid 65534, no supplementary groups) so that DIR's permissions apply,
// and tries each writer on a file of DIR: writeFileAtomic and writeFileAtomicSync on DIR/keep.bin,
// torchSave on DIR/ckpt.pth.tar. It prints one JSON line:
//   { uid, gid, probe, results: [{ writer, code, file, message, cause }] }
// where probe is the error code of a plain `open(DIR/probe, 'wx')` (null if that succeeded: then the
// directory is not read-only for this process and the results prove nothing).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic, writeFileAtomicSync } from '../../src/io/atomic-write';
import { PyDict, TorchTensor, torchSave } from '../../src/io/torch-save';

const NOBODY = 65534;

interface Outcome { writer: string; code: string | null; file?: string; message?: string; cause?: string }

function outcome(writer: string, e: unknown): Outcome {
  if (e === undefined) return { writer, code: null };
  const err = e as { code?: string; file?: string; message?: string; cause?: { code?: string } };
  return { writer, code: err.code ?? 'no code', file: err.file, message: err.message, cause: err.cause?.code };
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: read-only-dir-child.ts DIR');
  if (process.platform === 'linux' && process.getuid?.() === 0) {
    process.setgroups!([]);
    process.setgid!(NOBODY);
    process.setuid!(NOBODY);
  }
  let probe: string | null = null;
  try {
    fs.closeSync(fs.openSync(path.join(dir, 'probe'), 'wx'));
    fs.rmSync(path.join(dir, 'probe'));
  } catch (e) {
    probe = (e as { code?: string }).code ?? 'no code';
  }
  const results: Outcome[] = [];
  const keep = path.join(dir, 'keep.bin');
  results.push(await writeFileAtomic(keep, Buffer.from('new contents')).then(() => outcome('writeFileAtomic', undefined),
    (e: unknown) => outcome('writeFileAtomic', e)));
  try {
    writeFileAtomicSync(keep, Buffer.from('new contents'));
    results.push(outcome('writeFileAtomicSync', undefined));
  } catch (e) {
    results.push(outcome('writeFileAtomicSync', e));
  }
  const value = new PyDict(new Map([['w', new TorchTensor('float32', [4], Float32Array.from([1, 2, 3, 4]))]]));
  results.push(await torchSave(path.join(dir, 'ckpt.pth.tar'), value).then(() => outcome('torchSave', undefined),
    (e: unknown) => outcome('torchSave', e)));
  process.stdout.write(`${JSON.stringify({ uid: process.getuid?.(), gid: process.getgid?.(), probe, results })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
  process.exitCode = 1;
});
