// Shared access to the committed image fixtures and their torchvision/Pillow goldens
// (test/fixtures/images, made by make_image_fixtures.py; no Python at test time).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

export const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'images');

export interface TransformGolden {
  resize: number;
  crop: number;
  resizedWidth: number;
  resizedHeight: number;
  resizedSha256: string;
  croppedSha256: string;
  tensorSha256: string;
  tensorSum: number;
  croppedFile?: string;
}

export interface ImageGolden {
  file: string;
  note: string;
  pilMode: string;
  width: number;
  height: number;
  decodeSha256: string;
  transforms: TransformGolden[];
}

export interface ResampleGolden {
  kind: 'noise' | 'smooth';
  height: number;
  width: number;
  channels: number;
  seed: number;
  outHeight: number;
  outWidth: number;
  filter: 'nearest' | 'lanczos' | 'bilinear' | 'bicubic' | 'box' | 'hamming';
  box?: [number, number, number, number];
  sha256: string;
}

export interface Golden {
  versions: Record<string, string>;
  mean: number[];
  std: number[];
  images: ImageGolden[];
  resample: ResampleGolden[];
  imageFolder: { tree: Record<string, string | null>; symlinks: string[]; classes: string[]; samples: [string, number][] };
}

export const golden: Golden = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'golden.json'), 'utf8'));

export function fixturePath(rel: string): string {
  return path.join(FIXTURES, rel);
}

export function sha256(data: ArrayBufferView): string {
  return crypto.createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex');
}

export function readGz(rel: string): Uint8Array {
  return new Uint8Array(zlib.gunzipSync(fs.readFileSync(fixturePath(rel))));
}

/** The synthetic images of make_image_fixtures.py (noise() and smooth()). */
export function synthetic(kind: 'noise' | 'smooth', h: number, w: number, c: number, seed: number): Uint8Array {
  const a = new Uint8Array(h * w * c);
  if (kind === 'noise') {
    for (let i = 0; i < a.length; i++) a[i] = Math.imul(i + seed, 2654435761 | 0) >>> 24;
  } else {
    for (let y = 0, i = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < c; ch++, i++) {
          const t = (x * 3 + y * 2 + ch * 50 + seed) % 510;
          a[i] = t < 256 ? t : 509 - t;
        }
      }
    }
  }
  return a;
}

/** Count and largest size of element differences. */
export function diffStats(a: ArrayLike<number>, b: ArrayLike<number>): { count: number; max: number; percent: number } {
  let count = 0, max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > 0) {
      count++;
      if (d > max) max = d;
    }
  }
  return { count, max, percent: (100 * count) / Math.max(1, a.length) };
}
