// Every file reader against seeded byte-level mutants of real files (test/helpers/fuzz.ts): each
// mutant must be read or refused with an SslInvError (a coded error naming the file); a TypeError,
// a RangeError, an uncoded error or a crash fails. Readers: torch checkpoints (zip, legacy, a MoCo
// .pth.tar, TorchScript, each tensor read too), .npy, MAT-files (compressed and plain), the CIFAR
// pickles, safetensors, 300-W .pts, and JPEG/PNG decoding (sharp behind our header checks); then
// whole data set readers, each metadata file of the fixture data sets mutated in turn (CelebA's
// lists, Caltech101's splits, Flowers' and LSP's .mat, 300-W's .pts, Causal3DIdent's latents,
// the CIFAR batches), which also exercises the checks on the values (indices, counts). 250 mutants per file by default; a deeper run:
//   SSL_INV_FUZZ_MUTANTS=5000 SSL_INV_FUZZ_SEED=2 npx tap test/io/fuzz-readers.test.ts
// (5,000 per file under three seeds found nothing after the zip reader's fix; before it, a zip64
// locator's 64-bit offset crashed the process: see zip.test.ts.)
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fuzzReader } from '../helpers/fuzz';
import { parseNpy } from '../../src/io/npy';
import { parseMat } from '../../src/io/mat';
import { parseCifarBatch, parseCifarMeta } from '../../src/io/cifar';
import { parsePts } from '../../src/io/pts';
import { encodeSafetensors, parseSafetensors } from '../../src/io/safetensors';
import { CheckpointTensor, loadCheckpoint } from '../../src/io/torch-checkpoint';
import { decodeImageBuffer } from '../../src/data/decode';
import { readCausal3DIdentDataset, readDownstreamDataset } from '../../src/datasets';
import { PyValue, isTensor } from '../../src/io/pickle';

const FIX = path.join(__dirname, '..', 'fixtures');
const MUTANTS = Number(process.env.SSL_INV_FUZZ_MUTANTS ?? 250);
const SEED = Number(process.env.SSL_INV_FUZZ_SEED ?? 0);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuzz-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Reads every tensor reachable from a checkpoint's root (the lazy reads are readers too). */
async function readTensors(v: PyValue, depth = 0): Promise<void> {
  if (depth > 64) return;
  if (isTensor(v)) await (v as CheckpointTensor).read();
  else if (v instanceof Map) for (const x of v.values()) await readTensors(x, depth + 1);
  else if (Array.isArray(v)) for (const x of v) await readTensors(x as PyValue, depth + 1);
}

let counter = 0;
const cases: [string, Uint8Array, (b: Uint8Array) => unknown][] = [];
const file = (...p: string[]) => new Uint8Array(fs.readFileSync(path.join(FIX, ...p)));
for (const f of ['torch_state.pt', 'torch_state_legacy.pt', 'torch_misc.pt', 'moco_tiny.pth.tar', 'torchscript.pt']) {
  cases.push([`checkpoint ${f}`, file('io', f), async (b) => {
    const n = counter++;
    const p = path.join(dir, `m${n}.pt`);
    fs.writeFileSync(p, b);
    try {
      // Every other mutant with the zip records' CRC-32 check off: with it on, most mutants of a
      // zip checkpoint's data.pkl would stop at the check and the unpickler would rarely see them.
      await readTensors((await loadCheckpoint(p, { verifyCrc: n % 2 === 0 })).root);
    } finally {
      fs.rmSync(p);
    }
  }]);
}
for (const f of ['npy_f4.npy', 'npy_f8_be.npy', 'npy_i8.npy', 'npy_f8_fortran.npy', 'npy_v2.npy', 'npy_scalar.npy', 'npy_object.npy']) {
  cases.push([`npy ${f}`, file('io', f), (b) => parseNpy(Buffer.from(b), f)]);
}
for (const f of ['Flowers/setid.mat', 'Flowers/imagelabels.mat', 'LeedsSportsPose/joints.mat']) {
  cases.push([`mat ${f}`, file('datasets', 'data', f), (b) => parseMat(b, f)]);
}
cases.push(['cifar data_batch_1', file('datasets', 'data', 'CIFAR10', 'cifar-10-batches-py', 'data_batch_1'),
  (b) => parseCifarBatch(b, 'data_batch_1', { expectedRows: 3 })]);
cases.push(['cifar batches.meta', file('datasets', 'data', 'CIFAR10', 'cifar-10-batches-py', 'batches.meta'), (b) => parseCifarMeta(b, 'batches.meta')]);
cases.push(['pts indoor_001.pts', file('datasets', 'data', '300W', '01_Indoor', 'indoor_001.pts'), (b) => parsePts(b, 'indoor_001.pts', { expectedPoints: 68 })]);
cases.push(['safetensors', encodeSafetensors(new Map([
  ['a', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
  ['b', { shape: [4], data: Int32Array.from([1, 2, 3, 4]) }],
]), { format: 'pt' }), (b) => parseSafetensors(Buffer.from(b), 'x.safetensors')]);

for (const f of ['china_224x300_progressive.jpg', 'rocket_cmyk_240x180.jpg', 'chelsea_palette_120x80.png', 'chelsea_gray16_80x60.png']) {
  cases.push([`image ${f}`, file('images', 'inputs', f), (b) => decodeImageBuffer(b, { file: f })]);
}

cases.forEach(([name, bytes, read], i) => {
  t.test(name, async (t) => {
    const r = await fuzzReader(bytes, 0x5eed0000 + i * 7919 + SEED * 104729, MUTANTS, read);
    t.same(r.failures.slice(0, 3), [], `${MUTANTS} mutants: ${r.accepted} read, the rest refused with codes ${[...r.refused.keys()].join(', ')}`);
    t.ok(r.refused.size > 0, 'the mutants reach the checks (some are refused)');
  });
});

t.test('data set readers, one metadata file mutated at a time', async (t) => {
  const data = path.join(dir, 'data');
  fs.cpSync(path.join(FIX, 'datasets', 'data'), data, { recursive: true });
  const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
  const names: Record<string, string | undefined> = {
    CIFAR10: 'cifar10', Flowers: 'flowers', Caltech101: 'caltech101', '300W': '300w', CelebA: 'celeba',
    LeedsSportsPose: 'leeds_sports_pose', Causal3DIdent: undefined,
  };
  const perFile = Math.max(1, Math.round(MUTANTS / 6));
  for (const [folder, name] of Object.entries(names)) {
    const files = walk(path.join(data, folder)).filter((f) => !/\.(jpe?g|png)$/i.test(f)).sort();
    t.ok(files.length > 0, `${folder}: ${files.length} metadata files`);
    for (const [j, f] of files.entries()) {
      const orig = fs.readFileSync(f);
      const r = await fuzzReader(new Uint8Array(orig), 0x0da7a000 + j * 31 + folder.length * 977 + SEED * 104729, perFile, async (b) => {
        fs.writeFileSync(f, b);
        try {
          if (name) await readDownstreamDataset(name, data, { verifyChecksums: false, expectedRows: 3 });
          else await readCausal3DIdentDataset(data, { target: 'class' });
        } finally {
          fs.writeFileSync(f, orig);
        }
      });
      t.same(r.failures.slice(0, 3), [], `${path.relative(data, f)}: ${perFile} mutants, ${r.accepted} read, the rest refused (${[...r.refused.keys()].join(', ') || 'none'})`);
    }
  }
});
