// Shared by test/datasets/*.test.ts: the fixtures made by test/fixtures/datasets/make_dataset_fixtures.py
// (fake data sets in the real layouts, and the original's outputs on them), and temporary copies.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

export const FIX = path.join(__dirname, '..', 'fixtures', 'datasets');
export const DATA = path.join(FIX, 'data');
export const BAD = path.join(FIX, 'bad');
export const MATDIR = path.join(FIX, 'mat');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const expected: any = JSON.parse(fs.readFileSync(path.join(FIX, 'expected.json'), 'utf8'));

export interface RealWorldExpected {
  trees: Record<string, string[]>;
  configs: Record<string, { tree: string; k: number; groups: number[][] }>;
}

export function realworldExpected(): RealWorldExpected {
  return JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(FIX, 'realworld.json.gz'))).toString('utf8'));
}

/** A fresh temporary directory, removed when the process exits. */
export function tmpDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `ssl-inv-${prefix}-`));
  process.on('exit', () => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A copy of a fixture data set (so that a test can break it). */
export function copyFixture(name: string, into: string): string {
  const dst = path.join(into, name);
  fs.cpSync(path.join(DATA, name), dst, { recursive: true });
  return dst;
}

/** Empty files at the given relative paths under root. */
export function materialize(root: string, files: readonly string[]): void {
  const dirs = new Set(files.map((f) => path.dirname(path.join(root, f))));
  for (const d of dirs) fs.mkdirSync(d, { recursive: true });
  for (const f of files) fs.writeFileSync(path.join(root, f), '');
}

export const relTo = (root: string) => (p: string): string => path.relative(root, p).split(path.sep).join('/');
