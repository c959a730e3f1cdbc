/**
 * Byte-level mutation fuzzing of the file readers: from a valid file, seeded mutants (flipped bits,
 * bytes set to boundary values, 32-bit fields set to boundary integers, truncations, insertions,
 * duplicated and deleted runs), each handed to a reader. A reader passes on a mutant when it returns
 * or throws an SslInvError (a typed, coded error); anything else (a TypeError, a RangeError from a
 * typed array, an error without a code, a hang) is a failure, reported with the mutation that caused
 * it so it can be replayed. mutateJson makes structural mutants of JSON documents.
 */
import { isSslInvError } from '../../src/errors';

/** xorshift32: small, seeded, the same sequence everywhere. */
export class FuzzRng {
  private s: number;
  constructor(seed: number) {
    this.s = (seed >>> 0) || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    this.s = x;
    return x;
  }
  below(n: number): number {
    return this.next() % n;
  }
}

const BOUNDARY_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
const BOUNDARY_U32 = [0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x10000, 0x1000000];

/** One mutant of `src` and a description of what was done (for the failure message). */
export function mutate(src: Uint8Array, rng: FuzzRng): { bytes: Uint8Array; what: string } {
  const n = src.length;
  const at = n > 0 ? rng.below(n) : 0;
  switch (rng.below(8)) {
    case 0: {
      const b = Uint8Array.from(src);
      const bit = rng.below(8);
      if (n) b[at] = b[at]! ^ (1 << bit);
      return { bytes: b, what: `flip bit ${bit} of byte ${at}` };
    }
    case 1: {
      const b = Uint8Array.from(src);
      const v = BOUNDARY_BYTES[rng.below(BOUNDARY_BYTES.length)]!;
      if (n) b[at] = v;
      return { bytes: b, what: `byte ${at} = 0x${v.toString(16)}` };
    }
    case 2: {
      const b = Uint8Array.from(src);
      const v = BOUNDARY_U32[rng.below(BOUNDARY_U32.length)]!;
      const little = rng.below(2) === 0;
      const p = Math.max(0, Math.min(at, n - 4));
      if (n >= 4) new DataView(b.buffer).setUint32(p, v, little);
      return { bytes: b, what: `u32 at ${p} = 0x${v.toString(16)} (${little ? 'LE' : 'BE'})` };
    }
    case 3:
      return { bytes: src.slice(0, at), what: `truncated to ${at} bytes` };
    case 4: {
      const len = 1 + rng.below(16);
      const ins = Uint8Array.from({ length: len }, () => rng.below(256));
      const b = new Uint8Array(n + len);
      b.set(src.subarray(0, at));
      b.set(ins, at);
      b.set(src.subarray(at), at + len);
      return { bytes: b, what: `${len} random bytes inserted at ${at}` };
    }
    case 5: {
      const len = Math.min(n - at, 1 + rng.below(64));
      const b = new Uint8Array(n - len);
      b.set(src.subarray(0, at));
      b.set(src.subarray(at + len), at);
      return { bytes: b, what: `${len} bytes deleted at ${at}` };
    }
    case 6: {
      const len = Math.min(n - at, 1 + rng.below(64));
      const to = n > 0 ? rng.below(n) : 0;
      const b = new Uint8Array(n + len);
      b.set(src.subarray(0, to));
      b.set(src.subarray(at, at + len), to);
      b.set(src.subarray(to), to + len);
      return { bytes: b, what: `${len} bytes from ${at} copied in at ${to}` };
    }
    default: {
      // Several flips at once: reaches states one flip cannot (a header and a body both off).
      const b = Uint8Array.from(src);
      const k = 2 + rng.below(6);
      for (let i = 0; i < k && n; i++) b[rng.below(n)] = rng.below(256);
      return { bytes: b, what: `${k} random bytes overwritten` };
    }
  }
}

export interface FuzzFailure {
  what: string;
  error: string;
}

/**
 * Runs `count` mutants of `src` through `read`; returns the failures (mutants on which `read` threw
 * something other than an SslInvError) and how many mutants were accepted.
 */
export async function fuzzReader(src: Uint8Array, seed: number, count: number,
  read: (bytes: Uint8Array) => unknown | Promise<unknown>): Promise<{ failures: FuzzFailure[]; accepted: number; refused: Map<string, number> }> {
  const rng = new FuzzRng(seed);
  const failures: FuzzFailure[] = [];
  const refused = new Map<string, number>();
  let accepted = 0;
  for (let i = 0; i < count; i++) {
    const m = mutate(src, rng);
    try {
      await read(m.bytes);
      accepted++;
    } catch (e) {
      if (isSslInvError(e)) {
        refused.set(e.code, (refused.get(e.code) ?? 0) + 1);
      } else {
        const err = e as { name?: string; message?: string; stack?: string };
        failures.push({ what: `mutant ${i} (seed ${seed}): ${m.what}`, error: `${err?.name}: ${err?.message}\n${(err?.stack ?? '').split('\n').slice(1, 4).join('\n')}` });
      }
    }
  }
  return { failures, accepted, refused };
}

const ODD_JSON_VALUES: unknown[] = [null, 'x', '', -1, 0, 1e308, [], {}, true, 'NaN', [1, 'a']];

/**
 * A structural mutant of a JSON value, in place: somewhere in it a key is deleted, a value replaced
 * by one of another type, or an array element removed. For readers of JSON files we write.
 */
export function mutateJson(v: unknown, rng: FuzzRng): unknown {
  if (Array.isArray(v)) {
    if (v.length && rng.below(3) !== 0) {
      const i = rng.below(v.length);
      v[i] = mutateJson(v[i], rng);
    } else if (v.length) {
      v.splice(rng.below(v.length), 1);
    }
    return v;
  }
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (!keys.length) return v;
    const k = keys[rng.below(keys.length)]!;
    const c = rng.below(4);
    if (c === 0) delete o[k];
    else if (c === 1) o[k] = structuredClone(ODD_JSON_VALUES[rng.below(ODD_JSON_VALUES.length)]);
    else o[k] = mutateJson(o[k], rng);
    return v;
  }
  return rng.below(2) ? structuredClone(ODD_JSON_VALUES[rng.below(ODD_JSON_VALUES.length)]) : v;
}
