// The transform grids equal the float32 values torch 1.13 computes for the original's
// ManualTransform (golden file from test/fixtures/transforms/make_grid_fixtures.py).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SYNTHETIC_TRANSFORMS, defaultK, transformGrid, ViewParams } from '../../src/transforms/grid';
import { torchLinspaceF32 } from '../../src/transforms/linspace';

interface Case { transform: string; k: number; resize?: number; crop?: number; params: Record<string, unknown[]> }
const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'transforms', 'grids.json'), 'utf8')) as { cases: Case[] };

function field(v: ViewParams, key: string): unknown {
  switch (key) {
    case 'angle': return (v as { angle: number }).angle;
    case 'translate': return (v as { translate: number[] }).translate;
    case 'scale': return (v as { scale: number }).scale;
    case 'shear': return (v as { shear: number[] }).shear;
    case 'box': { const b = v as { top: number; left: number; height: number; width: number }; return [b.top, b.left, b.height, b.width]; }
    case 'points': return (v as { points: number }).points;
    case 'sigma': return (v as { sigma: number }).sigma;
    case 'factor': return (v as { factor: number }).factor;
    case 'hue_factor': return (v as { hueFactor: number }).hueFactor;
    case 'kernel_size': return (v as { kernelSize: number }).kernelSize;
    case 'bits': return (v as { bits: number }).bits;
  }
  throw new Error(key);
}

t.test('every golden grid, value for value', async (t) => {
  for (const c of golden.cases) {
    const g = transformGrid(c.transform as never, c.k, c.resize ?? 256, c.crop ?? 224);
    for (const [key, values] of Object.entries(c.params)) {
      const ours = g.views.map((v) => field(v, key));
      t.same(ours, values, `${c.transform} k=${c.k} ${key}`);
    }
  }
});

t.test('torch.linspace in float32 for odd sizes', async (t) => {
  const a = torchLinspaceF32(0.25, 5, 24);
  t.equal(a[0], Math.fround(0.25));
  t.equal(a[23], 5);
  t.equal(torchLinspaceF32(3, 7, 1)[0], 3);
  t.equal(torchLinspaceF32(3, 7, 0).length, 0);
});

t.test('defaults and originals', async (t) => {
  t.same(SYNTHETIC_TRANSFORMS.map(defaultK), [256, 256, 256, 256, 256, 2, 2, 256, 2, 256, 256, 256, 256, 256, 256, 2, 2, 7]);
  const tr = transformGrid('translation');
  t.same((tr.views[tr.originalIndex] as { translate: number[] }).translate, [0, 0], 'translation original view');
  const sh = transformGrid('shear');
  t.same((sh.views[sh.originalIndex] as { shear: number[] }).shear, [0, 0]);
  t.equal(transformGrid('brightness').originalIndex, 128);
  t.throws(() => transformGrid('translation', 10), { code: 'ERR_INVALID_ARGUMENT' }, 'k not a square');
  t.throws(() => transformGrid('resized_crop', 100), { code: 'ERR_INVALID_ARGUMENT' }, 'k not a 4th power');
  t.throws(() => transformGrid('posterize', 8), { code: 'ERR_INVALID_ARGUMENT', field: '--k' }, 'past the end of a fixed grid');
  t.throws(() => transformGrid('h_flip', 3), { code: 'ERR_INVALID_ARGUMENT', field: '--k' });
  t.throws(() => transformGrid('deform', 257), { code: 'ERR_INVALID_ARGUMENT', field: '--k' });
});

t.test("a smaller k on a fixed grid takes its first k views, as ManualTransform's loop does", async (t) => {
  const p = transformGrid('posterize', 3);
  t.same(p.views, [1, 2, 3].map((bits) => ({ op: 'posterize', bits })), 'posterize: bits 1, 2, 3');
  t.same([p.k, p.labels, p.originalIndex], [3, [1, 2, 3], 0]);
  const f = transformGrid('h_flip', 1);
  t.same([f.k, f.views, f.labels], [1, [{ op: 'hflip', apply: false }], [0]], 'h_flip with k = 1: the unflipped view only');
  const full = transformGrid('deform'), d = transformGrid('deform', 40);
  t.same(d.views, full.views.slice(0, 40), 'deform: the first 40 of the 256 (points 2 for 32 views, then 3)');
  t.same([d.k, d.labels.length], [40, 40]);
  t.same(d.views.map((v) => (v as { points: number }).points), [...new Array(32).fill(2), ...new Array(8).fill(3)]);
  for (const tr of ['v_flip', 'grayscale', 'invert', 'equalize'] as const) {
    t.same(transformGrid(tr, 1).views, transformGrid(tr).views.slice(0, 1), `${tr} with k = 1`);
  }
});
