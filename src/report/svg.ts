/**
 * Small SVG charts for the HTML report, drawn as strings with no dependencies: a line chart (one
 * series per model) and a heatmap (models x transforms). Colours come from a fixed qualitative
 * palette and a sequential blue-white-red scale; text is escaped.
 */

export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo === hi) return [lo];
  const span = hi - lo;
  const step0 = span / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

export interface Series {
  name: string;
  x: number[];
  y: number[];
}

interface Frame {
  parts: string[];
  px: (x: number) => number;
  py: (y: number) => number;
  left: number;
  top: number;
}

/** Background, title, grid, ticks and axis labels for data in [x0, x1] x [y0, y1] (padded by `pad`). */
function frame(title: string, xLabel: string, yLabel: string, xs: number[], ys: number[], width: number, height: number,
  pad: { x: number; y: number }): Frame {
  const m = { l: 56, r: 12, t: 28, b: 40 };
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (!(x1 > x0)) { x0 -= 1; x1 += 1; }
  if (!(y1 > y0)) { y0 -= 0.5; y1 += 0.5; }
  const dx = (x1 - x0) * pad.x, dy = (y1 - y0) * pad.y;
  x0 -= dx; x1 += dx; y0 -= dy; y1 += dy;
  const px = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (width - m.l - m.r);
  const py = (y: number) => height - m.b - ((y - y0) / (y1 - y0)) * (height - m.t - m.b);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(title)}">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(`<text x="${width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="600">${esc(title)}</text>`);
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${m.l}" x2="${width - m.r}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/>`);
    parts.push(`<text x="${m.l - 6}" y="${py(t) + 4}" text-anchor="end" font-size="10">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(x0, x1)) {
    parts.push(`<text x="${px(t)}" y="${height - m.b + 14}" text-anchor="middle" font-size="10">${fmt(t)}</text>`);
  }
  parts.push(`<line x1="${m.l}" x2="${width - m.r}" y1="${height - m.b}" y2="${height - m.b}" stroke="#444"/>`);
  parts.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${height - m.b}" stroke="#444"/>`);
  parts.push(`<text x="${(m.l + width - m.r) / 2}" y="${height - 6}" text-anchor="middle" font-size="11">${esc(xLabel)}</text>`);
  parts.push(`<text transform="translate(13 ${(m.t + height - m.b) / 2}) rotate(-90)" text-anchor="middle" font-size="11">${esc(yLabel)}</text>`);
  return { parts, px, py, left: m.l, top: m.t };
}

function legendEntry(f: Frame, i: number, color: string, name: string, swatch: 'line' | 'box'): string {
  const y = f.top + 4 + i * 14;
  const mark = swatch === 'line'
    ? `<rect x="${f.left + 8}" y="${y}" width="10" height="3" fill="${color}"/>`
    : `<rect x="${f.left + 8}" y="${y - 3}" width="9" height="9" fill="${color}"/>`;
  return `${mark}<text x="${f.left + 22}" y="${y + 5}" font-size="10">${esc(name)}</text>`;
}

/** A line chart of several series; points with non-finite y are skipped. */
export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[], width = 520, height = 300): string {
  const xs = series.flatMap((s) => s.x), ys = series.flatMap((s) => s.y.filter(Number.isFinite));
  const f = frame(title, xLabel, yLabel, xs.length ? xs : [0], ys.length ? ys : [0], width, height, { x: 0, y: 0.05 });
  series.forEach((s, i) => {
    const c = PALETTE[i % PALETTE.length]!;
    const pts = s.x.map((x, j) => [x, s.y[j]!] as const).filter(([, y]) => Number.isFinite(y));
    if (pts.length > 1) f.parts.push(`<polyline fill="none" stroke="${c}" stroke-width="1.6" points="${pts.map(([x, y]) => `${f.px(x).toFixed(1)},${f.py(y).toFixed(1)}`).join(' ')}"/>`);
    if (pts.length <= 16) for (const [x, y] of pts) f.parts.push(`<circle cx="${f.px(x).toFixed(1)}" cy="${f.py(y).toFixed(1)}" r="2.5" fill="${c}"/>`);
    f.parts.push(legendEntry(f, i, c, s.name, 'line'));
  });
  f.parts.push('</svg>');
  return f.parts.join('');
}

function heatColor(v: number, lo: number, hi: number): string {
  if (!Number.isFinite(v)) return '#ddd';
  const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
  // white (low) -> blue (high), a colour-blind-safe single-hue scale
  const r = Math.round(247 - t * (247 - 8)), g = Math.round(251 - t * (251 - 81)), b = Math.round(255 - t * (255 - 156));
  return `rgb(${r},${g},${b})`;
}

/** A heatmap with a value in every cell (NaN cells grey). */
export function heatmap(title: string, rows: string[], cols: string[], values: number[][], cell = 38): string {
  const left = 12 + 7 * Math.max(4, ...rows.map((r) => r.length));
  const top = 30 + 6.5 * Math.max(4, ...cols.map((c) => c.length));
  const width = left + cols.length * cell + 12, height = top + rows.length * cell + 12;
  const flat = values.flat().filter(Number.isFinite);
  const lo = Math.min(...flat), hi = Math.max(...flat);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(title)}">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(`<text x="8" y="16" font-size="13" font-weight="600">${esc(title)}</text>`);
  cols.forEach((c, j) => {
    const x = left + j * cell + cell / 2;
    parts.push(`<text transform="translate(${x + 4} ${top - 6}) rotate(-60)" font-size="10">${esc(c)}</text>`);
  });
  rows.forEach((r, i) => {
    const y = top + i * cell;
    parts.push(`<text x="${left - 6}" y="${y + cell / 2 + 4}" text-anchor="end" font-size="11">${esc(r)}</text>`);
    cols.forEach((_, j) => {
      const v = values[i]?.[j] ?? NaN;
      const x = left + j * cell;
      const fill = heatColor(v, lo, hi);
      const dark = Number.isFinite(v) && hi > lo && (v - lo) / (hi - lo) > 0.55;
      parts.push(`<rect x="${x}" y="${y}" width="${cell - 2}" height="${cell - 2}" fill="${fill}"><title>${esc(`${r} / ${cols[j]}: ${Number.isFinite(v) ? v : 'n/a'}`)}</title></rect>`);
      parts.push(`<text x="${x + (cell - 2) / 2}" y="${y + cell / 2 + 3}" text-anchor="middle" font-size="9" fill="${dark ? '#fff' : '#222'}">${Number.isFinite(v) ? v.toFixed(2) : '–'}</text>`);
    });
  });
  parts.push('</svg>');
  return parts.join('');
}

export interface ScatterSeries {
  name: string;
  points: { x: number; y: number; label: string }[];
}

/** A scatter plot, one colour per series, each point labelled. */
export function scatterChart(title: string, xLabel: string, yLabel: string, series: ScatterSeries[], width = 520, height = 320): string {
  const pts = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const f = frame(title, xLabel, yLabel, pts.length ? pts.map((p) => p.x) : [0], pts.length ? pts.map((p) => p.y) : [0],
    width, height, { x: 0.12, y: 0.1 });
  series.forEach((s, i) => {
    const c = PALETTE[i % PALETTE.length]!;
    for (const p of s.points.filter((q) => Number.isFinite(q.x) && Number.isFinite(q.y))) {
      f.parts.push(`<circle cx="${f.px(p.x).toFixed(1)}" cy="${f.py(p.y).toFixed(1)}" r="4" fill="${c}"><title>${esc(`${p.label} (${s.name}): ${p.x}, ${p.y}`)}</title></circle>`);
      f.parts.push(`<text x="${(f.px(p.x) + 6).toFixed(1)}" y="${(f.py(p.y) + 3).toFixed(1)}" font-size="9">${esc(p.label)}</text>`);
    }
    f.parts.push(legendEntry(f, i, c, s.name, 'box'));
  });
  f.parts.push('</svg>');
  return f.parts.join('');
}
