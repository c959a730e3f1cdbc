// Self-test of the golden checkpoint fixtures (test/fixtures/models, test/helpers/model-fixtures.ts):
// the PRNG against values numpy computed, byte-exact reassembly of resnet18-moco and resnet18-plain
// (SHA-256 checked inside materializeCheckpoint), cache reuse, failure on a diverging manifest, and
// the committed inputs/expected outputs. resnet50* and resnet50w3 are materialised by the model tests.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  MODEL_FIXTURES_DIR, checkpointInfo, checkpointNames, expectedInfo, expectedNames, fixtureExpected,
  fixtureExpectedF64, fixtureIndex, fixtureInput, fnv1a32, loadManifest, materializeCheckpoint,
  materializeManifest, PayloadRegion, prngFill, prngHash, prngTensor,
} from './helpers/model-fixtures';

const f32bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

t.test('PRNG matches numpy bit for bit', async (t) => {
  // Values printed by make_model_fixtures.py's fnv1a32 / prng_hash / prng_values.
  t.equal(fnv1a32(''), 2166136261);
  t.equal(fnv1a32('a'), 3826002220);
  t.equal(fnv1a32('state_dict.module.encoder_q.conv1.weight'), 2541273688);
  t.same([0, 1, 4294967295].map((i) => prngHash(12345, i)), [0x912efcf7, 0x40a9e1b3, 0xcbb9c334]);
  const spec = { seed: fnv1a32('golden'), scale: 0.10000000149011612, shift: 1.25 };
  t.equal(spec.seed, 386248004);
  const v = prngTensor(spec, 4);
  t.same(f32bits(v), [1067288586, 1068121678, 1067144557, 1067981058]);
  t.same(Array.from(v), [1.2307140827178955, 1.330026388168335, 1.213544487953186, 1.313263177871704]);
  t.same(f32bits(prngFill(spec, new Float32Array(1), 37748735)), [1066847466]);
  // prngFill at an offset equals the tail of prngTensor.
  t.same(f32bits(prngFill(spec, new Float32Array(5), 3)), f32bits(prngTensor(spec, 8).subarray(3)));
});

t.test('index and manifests are consistent', async (t) => {
  t.same(checkpointNames(), ['resnet18-moco', 'resnet18-plain', 'resnet50-moco', 'resnet50-plain', 'resnet50w3-moco', 'resnet18w3-plain']);
  for (const name of checkpointNames()) {
    const m = loadManifest(name);
    let pos = 0;
    for (const r of m.regions) {
      t.equal(r.offset, pos, `${name}: contiguous at ${pos}`);
      pos += r.length;
    }
    t.equal(pos, m.size, `${name}: regions cover the file`);
    t.equal(checkpointInfo(m.file).sha256, m.sha256);
  }
});

t.test('resnet18-moco and resnet18-plain rebuild byte for byte', async (t) => {
  for (const name of ['resnet18-moco', 'resnet18-plain']) {
    const t0 = Date.now();
    const file = await materializeCheckpoint(name); // throws unless size and sha256 match
    const info = checkpointInfo(name);
    t.equal(path.basename(file), `${info.sha256}${name.endsWith('moco') ? '.pth.tar' : '.pth'}`);
    t.equal(fs.statSync(file).size, info.size);
    const head = Buffer.alloc(4);
    const fd = fs.openSync(file, 'r');
    fs.readSync(fd, head, 0, 4, 0);
    t.same([...head], [0x50, 0x4b, 0x03, 0x04], `${name} starts with a zip local header`);

    // A payload read back from the file equals prngTensor of its manifest spec.
    const m = loadManifest(name);
    const key = name.endsWith('moco') ? 'state_dict.module.encoder_q.conv1.weight' : 'conv1.weight';
    const r = m.regions.find((x): x is PayloadRegion => 'name' in x && x.name === key)!;
    t.ok(r, key);
    const bytes = Buffer.alloc(r.length);
    fs.readSync(fd, bytes, 0, r.length, r.offset);
    fs.closeSync(fd);
    t.same([...bytes], [...new Uint8Array(prngTensor(r.prng!, r.numel).buffer)], `${key} payload`);
    t.comment(`${name}: ${info.size} bytes in ${Date.now() - t0} ms`);

    const t1 = Date.now();
    t.equal(await materializeCheckpoint(info.file), file, 'cached file reused');
    t.ok(Date.now() - t1 < 1000, 'reuse does not rebuild');
  }
  // encoder_q and encoder_k hold different values.
  const m = loadManifest('resnet18-moco');
  const spec = (n: string) => (m.regions.find((x) => 'name' in x && x.name === n) as PayloadRegion).prng!;
  t.not(spec('state_dict.module.encoder_q.conv1.weight').seed, spec('state_dict.module.encoder_k.conv1.weight').seed);
});

t.test('a diverging manifest is refused and leaves no file behind', async (t) => {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-fixtures-test-'));
  t.teardown(() => fs.rmSync(cacheDir, { recursive: true, force: true }));
  const m = loadManifest('resnet18-plain');
  const r = m.regions.find((x): x is PayloadRegion => 'prng' in x && x.name === 'bn1.bias')!;
  r.prng = { ...r.prng!, scale: r.prng!.scale * 2 };
  await t.rejects(materializeManifest(m, path.join(MODEL_FIXTURES_DIR, 'checkpoints'), cacheDir), /diverged/);
  t.same(fs.readdirSync(cacheDir), []);
});

t.test('inputs and expected outputs load with their indexed shapes', async (t) => {
  t.same(fixtureInput('x224').shape, [2, 3, 224, 224]);
  const x64 = fixtureInput('x64');
  t.same(x64.shape, [2, 3, 64, 64]);
  t.ok(x64.data instanceof Float32Array);
  const names = Object.keys(fixtureIndex().expected);
  t.equal(names.length, 22, '10 float32 + 6 float64 feature sets, 6 resnet18 stages');
  for (const n of names) {
    const e = expectedInfo(n);
    const a = e.precision === 'float32' ? fixtureExpected(n) : fixtureExpectedF64(n);
    t.same(a.shape, e.shape, n);
    t.ok(a.data.every(Number.isFinite), `${n} finite`);
    if (e.output === 'features') t.same(a.shape, [2, checkpointInfo(e.checkpoint).featureDim], n);
  }
  t.same(expectedNames({ checkpoint: 'resnet50w3-moco' }), ['resnet50w3-moco.x64.float32.features', 'resnet50w3-moco.x64.float64.features']);
  t.same(fixtureExpected('resnet18-plain.x64.float32.layer4').shape, [2, 512, 2, 2]);
  t.throws(() => fixtureExpected('resnet18-moco.x64.float64.features'), /fixtureExpectedF64/);
  await t.rejects(materializeCheckpoint('resnet34-moco'), /unknown checkpoint/);
});
