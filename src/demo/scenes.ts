/**
 * Deterministic synthetic scenes for `ssl-inv demo`: an image set the package can build anywhere,
 * with no download, in an ImageFolder layout (one class folder per object, several views each).
 *
 * Each object is a textured shape (disc, box, triangle, star or ring, with stripes, checks, dots,
 * waves or a gradient) on a textured background; its views differ the way photos of one object do:
 * pose (rotation, scale, position), lighting (brightness, contrast, colour cast) and background
 * detail. Everything comes from one seeded PRNG (mulberry32), so the same seed gives byte-identical
 * PNGs on every machine. Images are RGB uint8, HWC.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sharpModule } from '../data/sharp-module';

export interface SceneSetOptions {
  objects: number;
  viewsPerObject: number;
  width: number;
  height: number;
  seed: number;
}

/** mulberry32: a small, fast 32-bit PRNG with good statistical quality for this purpose. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Shape = 'disc' | 'box' | 'triangle' | 'star' | 'ring';
type Texture = 'stripes' | 'checks' | 'dots' | 'waves' | 'gradient';
type RGB = [number, number, number];

interface ObjectSpec {
  shape: Shape;
  texture: Texture;
  colorA: RGB;
  colorB: RGB;
  bgA: RGB;
  bgB: RGB;
  bgTexture: Texture;
  period: number;
  bgPeriod: number;
}

interface ViewSpec {
  angle: number;
  scale: number;
  cx: number;
  cy: number;
  brightness: number;
  contrast: number;
  cast: RGB;
  bgPhase: number;
}

const SHAPES: Shape[] = ['disc', 'box', 'triangle', 'star', 'ring'];
const TEXTURES: Texture[] = ['stripes', 'checks', 'dots', 'waves', 'gradient'];

function randomColor(r: () => number): RGB {
  // A saturated hue at a random lightness, so objects differ in colour as well as form.
  const h = r() * 6, s = 0.5 + 0.5 * r(), v = 0.35 + 0.6 * r();
  const i = Math.floor(h), f = h - i;
  const p = v * (1 - s), q = v * (1 - s * f), u = v * (1 - s * (1 - f));
  const table: RGB[] = [[v, u, p], [q, v, p], [p, v, u], [p, q, v], [u, p, v], [v, p, q]];
  return table[i % 6]!.map((c) => c * 255) as RGB;
}

function objectSpec(r: () => number, index: number): ObjectSpec {
  return {
    shape: SHAPES[index % SHAPES.length]!,
    texture: TEXTURES[Math.floor(index / SHAPES.length + r() * 5) % TEXTURES.length]!,
    colorA: randomColor(r),
    colorB: randomColor(r),
    bgA: randomColor(r).map((c) => 0.5 * c + 60) as RGB,
    bgB: randomColor(r).map((c) => 0.5 * c + 40) as RGB,
    bgTexture: TEXTURES[Math.floor(r() * TEXTURES.length)]!,
    period: 4 + r() * 10,
    bgPeriod: 8 + r() * 24,
  };
}

function viewSpec(r: () => number): ViewSpec {
  return {
    angle: r() * 2 * Math.PI,
    scale: 0.55 + 0.35 * r(),
    cx: 0.5 + (r() - 0.5) * 0.3,
    cy: 0.5 + (r() - 0.5) * 0.3,
    brightness: 0.75 + 0.5 * r(),
    contrast: 0.75 + 0.5 * r(),
    cast: [0.9 + 0.2 * r(), 0.9 + 0.2 * r(), 0.9 + 0.2 * r()],
    bgPhase: r() * 100,
  };
}

/** Signed inside-ness of a shape at object coordinates (u, v) in [-1, 1]: > 0 inside. */
function inside(shape: Shape, u: number, v: number): number {
  const rr = Math.hypot(u, v);
  switch (shape) {
    case 'disc': return 1 - rr;
    case 'box': return 0.8 - Math.max(Math.abs(u), Math.abs(v));
    case 'triangle': return Math.min(v + 0.6, 0.9 - v - 1.6 * Math.abs(u) * 0.9, 1) * 0.8;
    case 'star': {
      const a = Math.atan2(v, u);
      return 0.55 + 0.35 * Math.cos(5 * a) - rr;
    }
    case 'ring': return 0.25 - Math.abs(rr - 0.65);
  }
}

function texture(t: Texture, x: number, y: number, period: number): number {
  switch (t) {
    case 'stripes': return 0.5 + 0.5 * Math.sin((2 * Math.PI * (x + 0.5 * y)) / period);
    case 'checks': return (Math.floor(x / period) + Math.floor(y / period)) % 2 === 0 ? 1 : 0;
    case 'dots': {
      const fx = (x / period) % 1, fy = (y / period) % 1;
      return Math.hypot(fx - 0.5, fy - 0.5) < 0.3 ? 1 : 0;
    }
    case 'waves': return 0.5 + 0.5 * Math.sin((2 * Math.PI * x) / period + 2 * Math.sin((2 * Math.PI * y) / (3 * period)));
    case 'gradient': return ((x + y) / (6 * period)) % 1;
  }
}

function clamp8(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

/** Renders one view as RGB uint8 HWC. */
export function renderView(o: ObjectSpec, v: ViewSpec, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  const size = Math.min(width, height) * 0.5 * v.scale;
  const cos = Math.cos(v.angle), sin = Math.sin(v.angle);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      // 2x2 supersampling for smooth edges.
      const acc = [0, 0, 0];
      for (let sy = 0; sy < 2; sy++) {
        for (let sx = 0; sx < 2; sx++) {
          const px = x + 0.25 + 0.5 * sx, py = y + 0.25 + 0.5 * sy;
          const dx = (px - v.cx * width) / size, dy = (py - v.cy * height) / size;
          const u = cos * dx + sin * dy, w = -sin * dx + cos * dy;
          let c: RGB;
          if (inside(o.shape, u, w) > 0) {
            const k = texture(o.texture, (u + 1) * size, (w + 1) * size, o.period);
            c = [0, 1, 2].map((i) => o.colorA[i]! * k + o.colorB[i]! * (1 - k)) as RGB;
          } else {
            const k = texture(o.bgTexture, px + v.bgPhase, py, o.bgPeriod);
            c = [0, 1, 2].map((i) => o.bgA[i]! * k + o.bgB[i]! * (1 - k)) as RGB;
          }
          for (let i = 0; i < 3; i++) acc[i]! += c[i]!;
        }
      }
      for (let i = 0; i < 3; i++) {
        const base = acc[i]! / 4;
        const lit = ((base - 128) * v.contrast + 128) * v.brightness * v.cast[i]!;
        out[(y * width + x) * 3 + i] = clamp8(lit);
      }
    }
  }
  return out;
}

export interface SceneSet {
  root: string;
  classes: string[];
  files: string[];
}

/**
 * Writes objects x viewsPerObject PNGs under root/object_XX/view_YY.png and returns the listing.
 * Existing identical files are kept, so a second run is fast.
 */
export async function writeSceneSet(root: string, opts: SceneSetOptions): Promise<SceneSet> {
  const r = mulberry32(opts.seed);
  const classes: string[] = [];
  const files: string[] = [];
  const digits = String(Math.max(opts.objects, opts.viewsPerObject) - 1).length;
  for (let i = 0; i < opts.objects; i++) {
    const o = objectSpec(r, i);
    const cls = `object_${String(i).padStart(digits, '0')}`;
    classes.push(cls);
    fs.mkdirSync(path.join(root, cls), { recursive: true });
    for (let j = 0; j < opts.viewsPerObject; j++) {
      const v = viewSpec(r);
      const file = path.join(root, cls, `view_${String(j).padStart(digits, '0')}.png`);
      const pixels = renderView(o, v, opts.width, opts.height);
      const png = await sharpModule()(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength), {
        raw: { width: opts.width, height: opts.height, channels: 3 },
      }).png({ compressionLevel: 6 }).toBuffer();
      if (!fs.existsSync(file) || !fs.readFileSync(file).equals(png)) fs.writeFileSync(file, png);
      files.push(file);
    }
  }
  return { root, classes, files };
}
