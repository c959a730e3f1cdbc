/**
 * Reading the evaluations' result files back for the report: `*_invariance.json`
 * (eval/results.ts, format ssl-inv-invariance/1) and `*_downstream.json` (ssl-inv-downstream/1).
 *
 * A file of ours is checked field by field for what the report reads (kinds, names, the rows'
 * numbers, the summary, the provenance) before it is used; one that fails is ERR_RESULTS_FORMAT
 * naming the file and the field, never a TypeError halfway through rendering. A file with our name
 * pattern that is not JSON is the same error (our writes are atomic, so a half-written file is not
 * ours to guess at). JSON with another `format` belongs to someone else and is left out. Numbers
 * may be null: JSON.stringify writes NaN (a degenerate view's similarity) as null, read back as NaN.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { SslInvError } from '../errors';
import { InvarianceResult, RESULT_FORMAT } from '../eval/results';

export const DOWNSTREAM_FORMAT = 'ssl-inv-downstream/1';

export interface DownstreamSummary {
  model: string;
  dataset: string;
  metric: string;
  testScore: number;
  chosenC: number;
}

type Obj = Record<string, unknown>;

class Checker {
  constructor(private readonly file: string) {}

  fail(field: string, expected: string, got: unknown): never {
    const shown = got === undefined ? 'nothing' : JSON.stringify(got)?.slice(0, 60) ?? String(got);
    throw new SslInvError('ERR_RESULTS_FORMAT', `expected ${expected}, got ${shown}`, { file: this.file, field });
  }

  obj(v: unknown, field: string): Obj {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(field, 'an object', v);
    return v as Obj;
  }

  str(v: unknown, field: string): string {
    if (typeof v !== 'string') this.fail(field, 'a string', v);
    return v as string;
  }

  optStr(v: unknown, field: string): string | undefined {
    return v === undefined ? undefined : this.str(v, field);
  }

  /** A number, or null for NaN (JSON's spelling of it). */
  num(v: unknown, field: string): number {
    if (v === null) return NaN;
    if (typeof v !== 'number') this.fail(field, 'a number', v);
    return v as number;
  }

  arr(v: unknown, field: string): unknown[] {
    if (!Array.isArray(v)) this.fail(field, 'an array', v);
    return v as unknown[];
  }
}

/** The fields of an invariance result the report reads, checked; NaNs restored. */
export function checkInvarianceResult(raw: unknown, file: string): InvarianceResult {
  const c = new Checker(file);
  const r = c.obj(raw, '(top level)');
  if (r.kind !== 'synthetic' && r.kind !== 'realworld') c.fail('kind', "'synthetic' or 'realworld'", r.kind);
  c.str(r.model, 'model');
  c.str(r.dataset, 'dataset');
  if (r.kind === 'synthetic') c.str(r.transform, 'transform');
  else c.optStr(r.transform, 'transform');
  c.optStr(r.paramName, 'paramName');
  c.obj(r.config, 'config');
  c.str(r.device, 'device');
  c.str(r.precision, 'precision');
  c.optStr(r.activations, 'activations');
  c.str(r.created, 'created');
  c.arr(r.models, 'models').forEach((m, i) => {
    const o = c.obj(m, `models[${i}]`);
    for (const k of ['file', 'sha256', 'arch']) c.str(o[k], `models[${i}].${k}`);
  });
  const st = c.obj(r.statistics, 'statistics');
  c.str(st.key, 'statistics.key');
  c.num(st.images, 'statistics.images');
  if (typeof st.cached !== 'boolean') c.fail('statistics.cached', 'true or false', st.cached);
  const rows = c.arr(r.rows, 'rows').map((row, i) => {
    const o = c.obj(row, `rows[${i}]`);
    if (typeof o.id !== 'number' && typeof o.id !== 'string') c.fail(`rows[${i}].id`, 'a number or a string', o.id);
    if (o.param !== undefined && typeof o.param !== 'number' &&
      !(Array.isArray(o.param) && o.param.every((x) => typeof x === 'number'))) {
      c.fail(`rows[${i}].param`, 'a number or an array of numbers', o.param);
    }
    return { ...o, distance: c.num(o.distance, `rows[${i}].distance`), similarity: c.num(o.similarity, `rows[${i}].similarity`) };
  });
  const s = c.obj(r.summary, 'summary');
  const summary = { distance: c.num(s.distance, 'summary.distance'), similarity: c.num(s.similarity, 'summary.similarity') };
  return { ...(r as unknown as InvarianceResult), rows: rows as unknown as InvarianceResult['rows'], summary };
}

/** What the report reads of a downstream result, checked. */
export function checkDownstreamResult(raw: unknown, file: string): DownstreamSummary {
  const c = new Checker(file);
  const r = c.obj(raw, '(top level)');
  const probe = c.obj(r.probe, 'probe');
  return {
    model: c.str(r.model, 'model'), dataset: c.str(r.dataset, 'dataset'), metric: c.str(r.metric, 'metric'),
    testScore: c.num(probe.testScore, 'probe.testScore'), chosenC: c.num(probe.chosenC, 'probe.chosenC'),
  };
}

/** Parsed JSON of each `*${suffix}` file of `dir` whose `format` is ours, in name order. */
async function readOurs(dir: string, suffix: string, format: string): Promise<{ file: string; raw: unknown }[]> {
  let names: string[];
  try {
    names = (await fsp.readdir(dir)).filter((n) => n.endsWith(suffix)).sort();
  } catch (e) {
    throw new SslInvError('ERR_FILE_NOT_FOUND', `cannot list the results folder (${(e as Error).message})`, { file: dir, cause: e });
  }
  const out: { file: string; raw: unknown }[] = [];
  for (const n of names) {
    const file = path.join(dir, n);
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (e) {
      throw new SslInvError('ERR_FILE_READ', `cannot read (${(e as Error).message})`, { file, cause: e });
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new SslInvError('ERR_RESULTS_FORMAT', `not JSON (${(e as Error).message})`, { file, cause: e });
    }
    if (raw !== null && typeof raw === 'object' && (raw as Obj).format === format) out.push({ file, raw });
  }
  return out;
}

export async function readInvarianceResults(dir: string): Promise<InvarianceResult[]> {
  return (await readOurs(dir, '_invariance.json', RESULT_FORMAT)).map((f) => checkInvarianceResult(f.raw, f.file));
}

/** Downstream results of `dir`; none when the folder cannot be listed (they are optional there). */
export async function readDownstreamResults(dir: string): Promise<DownstreamSummary[]> {
  try {
    await fsp.access(dir);
  } catch {
    return [];
  }
  return (await readOurs(dir, '_downstream.json', DOWNSTREAM_FORMAT)).map((f) => checkDownstreamResult(f.raw, f.file));
}
