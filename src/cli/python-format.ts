/**
 * Python's '{:.Ne}' for the CLI's main_moco.py-style progress lines (AverageMeter's ':.4e').
 *
 * Python rounds the exact binary value of a float half to even; JavaScript's toExponential rounds
 * exact ties up ((1.03125).toExponential(4) is '1.0313e+0' where Python prints '1.0312e+00'), and
 * writes one exponent digit where Python writes at least two. Fixed-point ('{:.Nf}') is
 * pythonFixed in eval/invariance.ts.
 */

/** Python's f'{x:.{digits}e}'. */
export function pythonExp(x: number, digits = 4): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  const a = Math.abs(x);
  const twoDigitExp = (s: string) => s.replace(/e([+-])(\d)$/, 'e$10$2');
  if (a === 0) return `${sign}${(0).toFixed(digits)}e+00`;
  // toFixed(100) writes a's exact binary expansion when it ends within 100 decimals, and otherwise
  // rounds at the 100th, far below the digits kept; outside these magnitudes JavaScript's own rounding
  // (an exact tie there is not a value a loss takes).
  if (a >= 1e21 || a < 1e-60) return sign + twoDigitExp(a.toExponential(digits));
  const [intPart, frac] = a.toFixed(100).split('.') as [string, string];
  const all = intPart + frac;
  const lead = all.search(/[1-9]/);
  let exp = intPart.length - 1 - lead;
  const kept = all.slice(lead, lead + digits + 1), rest = all.slice(lead + digits + 1);
  const first = rest[0] ?? '0';
  const tie = first === '5' && /^50*$/.test(rest);
  let n = BigInt(kept);
  if (first > '5' || (first === '5' && (!tie || n % 2n === 1n))) n += 1n;
  let s = n.toString();
  if (s.length > digits + 1) { // 9.99995... rounded up to 10.0000: one more power of ten
    s = s.slice(0, digits + 1);
    exp += 1;
  }
  const mantissa = digits > 0 ? `${s[0]}.${s.slice(1)}` : s[0]!;
  return `${sign}${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}
