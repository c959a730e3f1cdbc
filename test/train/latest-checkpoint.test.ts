// findLatestMocoCheckpoint (`pretrain --resume latest`) against a crash at any write offset
// (RELIABILITY §7 row 37: "newest valid checkpoint loads"): the newer of two real MoCo checkpoints
// is cut at seeded pseudo-random offsets and at the places that matter in its zip (nothing left,
// one byte, inside a local header, inside data.pkl, inside tensor records, the central directory,
// the end record, the last byte missing), with a stray temp file of an unfinished save beside it.
// Each time the older checkpoint must be returned and the newer reported as unreadable.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findLatestMocoCheckpoint } from '../../src/train/latest-checkpoint';
import { checkpointName, saveMocoCheckpoint } from '../../src/train/moco-checkpoint';
import { MocoInit, MocoV2 } from '../../src/train/moco';
import { headShapes } from '../../src/train/linear-head';
import { expectedBackboneKeys, resnetSpec } from '../../src/nn/resnet-spec';
import { SGD } from '../../src/optim/sgd';
import { mulberry32 } from '../../src/demo/scenes';

const MODEL = 'run';
const ARCH = 'resnet18';

/**
 * A MoCo start whose values are a cheap deterministic pattern (freshMocoInit's torchvision draws
 * cost a second for resnet18, and the values do not matter here); running variances are 1.
 */
function cheapInit(dim: number, K: number): MocoInit {
  const spec = resnetSpec(ARCH);
  const shapes = new Map([...expectedBackboneKeys(spec)].filter(([k]) => !k.endsWith('num_batches_tracked')));
  for (const [k, s] of headShapes(true, spec.featureDim, dim)) shapes.set(k, s);
  return {
    encoderQ: (key) => {
      const shape = shapes.get(key);
      if (!shape) throw new Error(`no shape for ${key}`);
      const v = new Float32Array(shape.reduce((a, b) => a * b, 1));
      if (key.endsWith('running_var')) v.fill(1);
      else for (let i = 0; i < v.length; i++) v[i] = ((i * 7919) % 201 - 100) / 1000;
      return v;
    },
    queue: new Float32Array(dim * K).fill(1 / Math.sqrt(dim)),
  };
}

interface ZipEntry { name: string; local: number; data: number; size: number }

/** The records of a (non-zip64, comment-free) zip as torchSave writes it, and where its central directory starts. */
function zipLayout(buf: Buffer): { entries: ZipEntry[]; cd: number; eocd: number } {
  const eocd = buf.length - 22;
  if (buf.readUInt32LE(eocd) !== 0x06054b50) throw new Error('no end of central directory record in the last 22 bytes');
  const count = buf.readUInt16LE(eocd + 10);
  const cd = buf.readUInt32LE(eocd + 16);
  const entries: ZipEntry[] = [];
  let p = cd;
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`no central directory entry at ${p}`);
    const size = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    p += 46 + nameLen + buf.readUInt16LE(p + 30) + buf.readUInt16LE(p + 32);
    if (buf.readUInt32LE(local) !== 0x04034b50) throw new Error(`no local header at ${local}`);
    const data = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    entries.push({ name, local, data, size });
  }
  return { entries, cd, eocd };
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

t.test('--resume latest: the newer checkpoint cut at any offset is skipped for the older one', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latest-ckpt-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

  // Two real checkpoints, as pretrain writes them after epochs 0 and 1 (resnet18, a tiny head and queue).
  const moco = await MocoV2.create({ arch: ARCH, dim: 8, K: 16, m: 0.999, T: 0.2, mlp: true }, cheapInit(8, 16));
  const sgd = new SGD({ lr: 0.03, momentum: 0.9 });
  const older = path.join(dir, checkpointName(MODEL, ARCH, 0));
  const newer = path.join(dir, checkpointName(MODEL, ARCH, 1));
  try {
    await saveMocoCheckpoint(older, moco, sgd, 1);
    await saveMocoCheckpoint(newer, moco, sgd, 2);
  } finally {
    moco.dispose();
    sgd.dispose();
  }
  const intact = fs.readFileSync(newer);
  // A crash during the save of epoch 2 left its temp file; it is complete, but never a candidate.
  fs.writeFileSync(path.join(dir, `.${checkpointName(MODEL, ARCH, 2)}.4242.0123456789ab.tmp`), intact);

  const notices: string[] = [];
  const found = await findLatestMocoCheckpoint(dir, MODEL, ARCH, (l) => notices.push(l));
  t.equal(found?.file, newer, 'intact: the newer checkpoint');
  t.equal(found?.checkpoint.epoch, 2, 'intact: epoch 2');
  t.match(found?.checkpoint, { arch: ARCH, dim: 8, K: 16, mlp: true });
  t.same(notices, [], 'no notice');

  // Where to cut: the places that matter in the zip, and seeded pseudo-random offsets.
  const { entries, cd, eocd } = zipLayout(intact);
  const pkl = entries.find((e) => e.name.endsWith('/data.pkl'))!;
  const tensors = entries.filter((e) => /\/data\/\d+$/.test(e.name));
  const biggest = tensors.reduce((a, b) => (b.size > a.size ? b : a));
  const last = tensors[tensors.length - 1]!;
  t.ok(pkl && tensors.length > 100, `the layout: data.pkl and ${tensors.length} tensor records`);
  const cuts = new Map<number, string>([
    [0, 'nothing written'],
    [1, 'one byte'],
    [17, 'inside the first local header'],
    [pkl.data + (pkl.size >> 1), 'inside data.pkl'],
    [tensors[5]!.local + 20, 'inside the local header of a tensor record'],
    [biggest.data + Math.floor(biggest.size / 3), 'inside the largest tensor record'],
    [last.data + last.size - 1, 'the last tensor record missing its last byte'],
    [cd + 100, 'inside the central directory'],
    [eocd + 10, 'inside the end of central directory record'],
    [intact.length - 1, 'the last byte missing'],
  ]);
  const rand = mulberry32(0x5eed37);
  while (cuts.size < 12) {
    const at = 2 + Math.floor(rand() * (intact.length - 3));
    if (!cuts.has(at)) cuts.set(at, 'a seeded random offset');
  }
  // Cut one copy progressively: longest first.
  const codes = new Set<string>();
  for (const [at, what] of [...cuts].sort((a, b) => b[0] - a[0])) {
    fs.truncateSync(newer, at);
    const lines: string[] = [];
    const got = await findLatestMocoCheckpoint(dir, MODEL, ARCH, (l) => lines.push(l));
    const label = `cut at ${at} of ${intact.length} (${what})`;
    t.equal(got?.file, older, `${label}: the older checkpoint`);
    t.equal(got?.checkpoint.epoch, 1, `${label}: epoch 1`);
    t.equal(lines.length, 1, `${label}: one notice`);
    t.match(lines[0] ?? '', new RegExp(`^--resume latest: (ERR_[A-Z_]+): ${escapeRe(newer)}: .*; trying the checkpoint before it$`),
      `${label}: the newer one named as unreadable, with its error code`);
    codes.add(/^--resume latest: (ERR_[A-Z_]+)/.exec(lines[0] ?? '')?.[1] ?? '?');
  }
  t.comment(`error codes seen: ${[...codes].sort().join(', ')}`);

  // Both unreadable: refused (never started over silently), naming every candidate.
  fs.truncateSync(older, 100);
  const lines: string[] = [];
  await t.rejects(findLatestMocoCheckpoint(dir, MODEL, ARCH, (l) => lines.push(l)),
    { code: 'ERR_CHECKPOINT_CORRUPT', file: dir, message: /none of the 2 checkpoint\(s\) of this run can be read/ });
  t.equal(lines.length, 2, 'a notice for each');
  t.ok(fs.existsSync(older) && fs.existsSync(newer), 'nothing removed');
  // No candidate at all (only the temp file): a first run.
  fs.rmSync(older);
  fs.rmSync(newer);
  t.equal(await findLatestMocoCheckpoint(dir, MODEL, ARCH), undefined, 'only a temp file: no checkpoint');
});
