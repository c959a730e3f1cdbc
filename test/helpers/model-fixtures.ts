// Golden ResNet checkpoints written by torch.save, rebuilt byte for byte without Python.
//
// test/fixtures/models/ holds, per checkpoint, a gzip'd "skeleton" (every byte of the torch.save
// zip that is not tensor payload) and a manifest of the file's regions; the payloads come from the
// counter-based PRNG "ssl-inv-prng/1" (README.md there defines it; make_model_fixtures.py is the
// numpy twin of prngFill below). materializeCheckpoint() reassembles a file into a cache dir,
// streaming (the w3 checkpoint is 2 GB), and checks its size and SHA-256 against the committed ones.
// It also serves the committed inputs and PyTorch's outputs (.npy).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { readNpySync } from '../../src/io/npy';

export const MODEL_FIXTURES_DIR = path.join(__dirname, '..', 'fixtures', 'models');

// ------------------------------------------------------------------------------------------------
// PRNG: ssl-inv-prng/1
// ------------------------------------------------------------------------------------------------

/** One tensor's PRNG parameters; scale and shift are float32 values. */
export interface PrngSpec {
  seed: number; // uint32
  scale: number;
  shift: number;
}

/** 32-bit FNV-1a of the UTF-8 bytes of `name` (how the generator derives a tensor's seed). */
export function fnv1a32(name: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(name, 'utf8')) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

/** The uint32 hash of (seed, index), index < 2^32. */
export function prngHash(seed: number, index: number): number {
  let x = (Math.imul(index, 0x9e3779b9) + seed) | 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Fills out[k] with element start + k of the tensor with this spec; returns out. */
export function prngFill(spec: PrngSpec, out: Float32Array, start = 0): Float32Array {
  const seed = spec.seed >>> 0;
  const scale = Math.fround(spec.scale);
  const shift = Math.fround(spec.shift);
  const n = out.length;
  for (let k = 0; k < n; k++) {
    // prngHash, inlined for speed (this loop produces gigabytes).
    let x = (Math.imul(start + k, 0x9e3779b9) + seed) | 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d);
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b);
    x ^= x >>> 16;
    const u = (x >>> 8) * 1.1920928955078125e-7 - 1; // * 2^-23, exact, in [-1, 1)
    out[k] = Math.fround(u * scale) + shift; // exact double product and sum, each rounded once to float32
  }
  return out;
}

/** The first n elements of the tensor with this spec. */
export function prngTensor(spec: PrngSpec, n: number): Float32Array {
  return prngFill(spec, new Float32Array(n), 0);
}

// ------------------------------------------------------------------------------------------------
// Manifests and the index
// ------------------------------------------------------------------------------------------------

export interface SkeletonRegion {
  offset: number;
  length: number;
  /** offset of these bytes in the (gunzipped) skeleton blob */
  skeleton: number;
}

export interface PayloadRegion {
  offset: number;
  length: number;
  /** storage key: the zip member is <prefix>/data/<storage> */
  storage: string;
  /** dotted path of the tensor in the saved object, e.g. state_dict.module.encoder_q.conv1.weight */
  name: string;
  dtype: 'float32' | 'int64';
  numel: number;
  /** float32 payloads */
  prng?: PrngSpec;
  /** int64 payloads: literal values */
  values?: number[];
}

export type ManifestRegion = SkeletonRegion | PayloadRegion;

export interface CheckpointManifest {
  format: 'ssl-inv-checkpoint-manifest/1';
  prng: 'ssl-inv-prng/1';
  name: string;
  /** the file name torch.save wrote (its zip prefix derives from it) */
  file: string;
  size: number;
  sha256: string;
  /** gzip'd skeleton blob, next to the manifest */
  skeleton: string;
  skeletonSize: number;
  skeletonSha256: string;
  regions: ManifestRegion[];
}

export interface CheckpointInfo {
  file: string;
  arch: 'resnet18' | 'resnet50' | 'resnet18w3' | 'resnet50w3';
  format: 'moco' | 'plain';
  featureDim: number;
  size: number;
  sha256: string;
  manifest: string;
  mlpDim?: number;
  queueK?: number;
  epoch?: number;
  optimizerState?: boolean;
}

export interface ArrayInfo {
  file: string;
  dtype: 'float32' | 'float64';
  shape: number[];
}

export interface ExpectedInfo extends ArrayInfo {
  checkpoint: string;
  input: string;
  precision: 'float32' | 'float64';
  /** 'features' (backbone output after global average pooling) or a stage of resnet18 */
  output: 'features' | 'relu' | 'maxpool' | 'layer1' | 'layer2' | 'layer3' | 'layer4';
  /** float32 features only: max |y32 - y64| / max |y64| of PyTorch's two runs */
  relErrVsFloat64?: number;
}

export interface FixtureIndex {
  checkpoints: Record<string, CheckpointInfo>;
  inputs: Record<string, ArrayInfo & { generator: string }>;
  expected: Record<string, ExpectedInfo>;
  generator: Record<string, string | number>;
}

let indexCache: FixtureIndex | undefined;

export function fixtureIndex(): FixtureIndex {
  indexCache ??= JSON.parse(fs.readFileSync(path.join(MODEL_FIXTURES_DIR, 'index.json'), 'utf8')) as FixtureIndex;
  return indexCache;
}

/** Checkpoint names: resnet18-moco, resnet18-plain, resnet50-moco, resnet50-plain, resnet50w3-moco, resnet18w3-plain. */
export function checkpointNames(): string[] {
  return Object.keys(fixtureIndex().checkpoints);
}

function resolveCheckpoint(name: string): [string, CheckpointInfo] {
  const idx = fixtureIndex().checkpoints;
  const found = Object.entries(idx).find(([n, c]) => n === name || c.file === name);
  if (!found) throw new Error(`unknown checkpoint fixture '${name}' (known: ${Object.keys(idx).join(', ')})`);
  return found;
}

/** Accepts the name ('resnet18-moco') or the file name ('resnet18-moco.pth.tar'). */
export function checkpointInfo(name: string): CheckpointInfo {
  return resolveCheckpoint(name)[1];
}

export function loadManifest(name: string): CheckpointManifest {
  const info = checkpointInfo(name);
  const m = JSON.parse(fs.readFileSync(path.join(MODEL_FIXTURES_DIR, info.manifest), 'utf8')) as CheckpointManifest;
  if (m.size !== info.size || m.sha256 !== info.sha256) {
    throw new Error(`fixture ${name}: index.json and ${info.manifest} disagree on size/sha256 (regenerate both)`);
  }
  return m;
}

// ------------------------------------------------------------------------------------------------
// Materialisation
// ------------------------------------------------------------------------------------------------

/** $SSL_INV_FIXTURE_CACHE, or os.tmpdir()/ssl-inv-fixtures. */
export function fixtureCacheDir(): string {
  return process.env.SSL_INV_FIXTURE_CACHE || path.join(os.tmpdir(), 'ssl-inv-fixtures');
}

/** '.pth.tar' for 'resnet18-moco.pth.tar', '.pth' for 'resnet18-plain.pth'. */
function extensionOf(file: string): string {
  const i = file.indexOf('.');
  return i < 0 ? '' : file.slice(i);
}

const BIG_ENDIAN = os.endianness() === 'BE';
const CHUNK_ELEMS = 1 << 20;
const SINK_BYTES = 8 << 20;

function toLittleEndian(bytes: Uint8Array, size: number): void {
  if (!BIG_ENDIAN) return;
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

/** Buffered, hashing, double-buffered file writer: generation overlaps the previous write. */
class HashingSink {
  private bufs = [Buffer.allocUnsafe(SINK_BYTES), Buffer.allocUnsafe(SINK_BYTES)];
  private cur = 0;
  private pos = 0;
  private pending: Promise<unknown> = Promise.resolve();
  readonly hash = createHash('sha256');
  written = 0;

  constructor(private readonly fh: FileHandle) {}

  async put(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) {
      const buf = this.bufs[this.cur]!;
      const n = Math.min(bytes.length - off, SINK_BYTES - this.pos);
      buf.set(bytes.subarray(off, off + n), this.pos);
      this.pos += n;
      off += n;
      if (this.pos === SINK_BYTES) await this.flush();
    }
  }

  private async flush(): Promise<void> {
    if (this.pos === 0) return;
    const data = this.bufs[this.cur]!.subarray(0, this.pos);
    this.hash.update(data);
    this.written += data.length;
    await this.pending; // the other buffer is free once its write is done
    const w = writeAll(this.fh, data);
    w.catch(() => undefined); // observed by the next flush/close/settle; never an unhandled rejection
    this.pending = w;
    this.cur ^= 1;
    this.pos = 0;
  }

  async close(): Promise<void> {
    await this.flush();
    await this.pending;
  }

  /** Waits for the write in flight, ignoring its outcome (cleanup after an error). */
  async settle(): Promise<void> {
    await this.pending.catch(() => undefined);
  }
}

async function writeAll(fh: FileHandle, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off);
    if (bytesWritten <= 0) throw new Error('write returned 0 bytes');
    off += bytesWritten;
  }
}

function loadSkeleton(manifest: CheckpointManifest, manifestDir: string): Buffer {
  const file = path.join(manifestDir, manifest.skeleton);
  const skel = gunzipSync(fs.readFileSync(file));
  if (skel.length !== manifest.skeletonSize || createHash('sha256').update(skel).digest('hex') !== manifest.skeletonSha256) {
    throw new Error(`fixture ${manifest.name}: skeleton ${file} does not match its manifest (size or sha256)`);
  }
  return skel;
}

async function writeRegions(manifest: CheckpointManifest, skel: Buffer, sink: HashingSink): Promise<void> {
  const chunk = new Float32Array(CHUNK_ELEMS);
  const chunkBytes = new Uint8Array(chunk.buffer);
  let pos = 0;
  for (const r of manifest.regions) {
    if (r.offset !== pos) throw new Error(`fixture ${manifest.name}: region at ${r.offset} does not start at ${pos}`);
    pos += r.length;
    if ('skeleton' in r) {
      if (r.skeleton + r.length > skel.length) throw new Error(`fixture ${manifest.name}: skeleton region out of range`);
      await sink.put(skel.subarray(r.skeleton, r.skeleton + r.length));
    } else if (r.dtype === 'int64') {
      if (!r.values || r.values.length !== r.numel || r.length !== 8 * r.numel) {
        throw new Error(`fixture ${manifest.name}: bad int64 region ${r.name}`);
      }
      const a = BigInt64Array.from(r.values, (v) => BigInt(v));
      const bytes = new Uint8Array(a.buffer);
      toLittleEndian(bytes, 8);
      await sink.put(bytes);
    } else {
      if (!r.prng || r.dtype !== 'float32' || r.length !== 4 * r.numel) {
        throw new Error(`fixture ${manifest.name}: bad float32 region ${r.name}`);
      }
      for (let start = 0; start < r.numel; start += CHUNK_ELEMS) {
        const n = Math.min(CHUNK_ELEMS, r.numel - start);
        const view = n === CHUNK_ELEMS ? chunk : chunk.subarray(0, n);
        prngFill(r.prng, view, start);
        const bytes = chunkBytes.subarray(0, 4 * n);
        toLittleEndian(bytes, 4);
        await sink.put(bytes);
      }
    }
  }
}

const inFlight = new Map<string, Promise<string>>();

/**
 * Rebuilds a checkpoint from its manifest into `cacheDir`/<sha256><ext> and returns the path.
 * Exported for tests of the mechanism itself; use materializeCheckpoint.
 */
export async function materializeManifest(manifest: CheckpointManifest, manifestDir: string, cacheDir = fixtureCacheDir()): Promise<string> {
  const target = path.join(cacheDir, `${manifest.sha256}${extensionOf(manifest.file)}`);
  try {
    const st = await fsp.stat(target);
    // Only verified files ever get this name (temp file + rename); the size check catches truncation.
    if (st.isFile() && st.size === manifest.size) return target;
  } catch (e) {
    if ((e as { code?: string }).code !== 'ENOENT') throw e;
  }
  await fsp.mkdir(cacheDir, { recursive: true });
  const skel = loadSkeleton(manifest, manifestDir);
  const tmp = path.join(cacheDir, `.${manifest.sha256}.${process.pid}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2)}.tmp`);
  const fh = await fsp.open(tmp, 'wx');
  const sink = new HashingSink(fh);
  let ok = false;
  try {
    await writeRegions(manifest, skel, sink);
    await sink.close();
    await fh.close();
    const sha = sink.hash.digest('hex');
    if (sink.written !== manifest.size || sha !== manifest.sha256) {
      throw new Error(
        `fixture ${manifest.name} (${manifest.file}): rebuilt file has ${sink.written} bytes, sha256 ${sha}; ` +
        `expected ${manifest.size} bytes, sha256 ${manifest.sha256}. The TypeScript PRNG or the reassembly ` +
        'diverged from test/fixtures/models/make_model_fixtures.py (or the manifest/skeleton was edited).');
    }
    await fsp.rename(tmp, target);
    ok = true;
    return target;
  } finally {
    if (!ok) {
      await sink.settle();
      await fh.close().catch(() => undefined);
      await fsp.unlink(tmp).catch(() => undefined);
    }
  }
}

/**
 * The path of the real torch.save checkpoint `name` ('resnet18-moco', 'resnet50w3-moco.pth.tar', ...),
 * rebuilt on first use into fixtureCacheDir() and verified (size and SHA-256); later calls reuse it.
 * Needs disk space for the file: up to 2 GB (resnet50w3-moco).
 */
export function materializeCheckpoint(name: string, opts: { cacheDir?: string } = {}): Promise<string> {
  const cacheDir = opts.cacheDir ?? fixtureCacheDir();
  let p: Promise<string> | undefined;
  try {
    const [canonical, info] = resolveCheckpoint(name);
    const key = `${cacheDir}\0${canonical}`;
    p = inFlight.get(key);
    if (!p) {
      const manifest = loadManifest(canonical);
      const manifestDir = path.dirname(path.join(MODEL_FIXTURES_DIR, info.manifest));
      p = materializeManifest(manifest, manifestDir, cacheDir).finally(() => inFlight.delete(key));
      inFlight.set(key, p);
    }
  } catch (e) {
    return Promise.reject(e);
  }
  return p;
}

// ------------------------------------------------------------------------------------------------
// Inputs and expected outputs
// ------------------------------------------------------------------------------------------------

export interface FixtureArray<T extends Float32Array | Float64Array> {
  shape: number[];
  data: T;
}

function readArray(info: ArrayInfo, what: string): { shape: number[]; data: Float32Array | Float64Array } {
  const a = readNpySync(path.join(MODEL_FIXTURES_DIR, info.file));
  if (a.dtype !== info.dtype || a.shape.join(',') !== info.shape.join(',')) {
    throw new Error(`${what}: ${info.file} is ${a.dtype} [${a.shape}], index.json says ${info.dtype} [${info.shape}]`);
  }
  return { shape: a.shape, data: a.data as Float32Array | Float64Array };
}

/** 'x224' ([2, 3, 224, 224]) or 'x64' ([2, 3, 64, 64]): float32 NCHW, standard normal. */
export function fixtureInput(name: string): FixtureArray<Float32Array> {
  const info = fixtureIndex().inputs[name];
  if (!info) throw new Error(`unknown input fixture '${name}' (known: ${Object.keys(fixtureIndex().inputs).join(', ')})`);
  return readArray(info, `input ${name}`) as FixtureArray<Float32Array>;
}

/** Names of the expected outputs, '<checkpoint>.<input>.<float32|float64>.<output>', optionally filtered. */
export function expectedNames(filter: Partial<Pick<ExpectedInfo, 'checkpoint' | 'input' | 'precision' | 'output'>> = {}): string[] {
  return Object.entries(fixtureIndex().expected)
    .filter(([, e]) => Object.entries(filter).every(([k, v]) => e[k as keyof ExpectedInfo] === v))
    .map(([n]) => n);
}

export function expectedInfo(name: string): ExpectedInfo {
  const info = fixtureIndex().expected[name];
  if (!info) throw new Error(`unknown expected-output fixture '${name}' (see test/fixtures/models/index.json)`);
  return info;
}

/** PyTorch's float32 output, e.g. 'resnet50-moco.x224.float32.features' or 'resnet18-plain.x64.float32.layer2'. */
export function fixtureExpected(name: string): FixtureArray<Float32Array> {
  const info = expectedInfo(name);
  if (info.precision !== 'float32') throw new Error(`${name} is a float64 reference: use fixtureExpectedF64`);
  return readArray(info, name) as FixtureArray<Float32Array>;
}

/** PyTorch's float64 run (model.double()), e.g. 'resnet18-moco.x64.float64.features'. */
export function fixtureExpectedF64(name: string): FixtureArray<Float64Array> {
  const info = expectedInfo(name);
  if (info.precision !== 'float64') throw new Error(`${name} is a float32 output: use fixtureExpected`);
  return readArray(info, name) as FixtureArray<Float64Array>;
}

/** Per-row normwise relative error ||out - ref|| / ||ref|| of `rows` feature rows. */
export function rowErrors(out: Float32Array, ref: ArrayLike<number>, rows: number): number[] {
  const d = out.length / rows;
  const errs: number[] = [];
  for (let r = 0; r < rows; r++) {
    let num = 0, den = 0;
    for (let j = 0; j < d; j++) {
      const diff = out[r * d + j]! - ref[r * d + j]!;
      num += diff * diff;
      den += ref[r * d + j]! ** 2;
    }
    errs.push(Math.sqrt(num / den));
  }
  return errs;
}
