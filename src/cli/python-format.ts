/**
 * Python's float formatting, for the lines the CLI prints in the original scripts' forms:
 * repr() (pythonFloatRepr), f'{x:.Nf}' (pythonFixed) and f'{x:.Ne}' (pythonExp; AverageMeter's ':.4e').
 *
 * Python rounds the exact binary value of a float half to even; JavaScript's toFixed and
 * toExponential round exact ties up ((0.0078125).toFixed(6) is '0.007813' where Python prints
 * '0.007812'; (1.03125).toExponential(4) is '1.0313e+0' where Python prints '1.0312e+00'), and
 * JavaScript writes one exponent digit where Python writes at least two. Both fixed and exponent
 * forms here round the exact decimal expansion (exactDigits) with roundHalfEven.
 */

/** Python's repr() of a float, which the original prints (e.g. 1e-07, not JavaScript's 1e-7). */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (Object.is(x, -0)) return '-0.0';
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return `${x}.0`;
  const ax = Math.abs(x);
  if (ax >= 1e-4 && ax < 1e16) return String(x);
  // Exponent form: Python uses at least two exponent digits and an explicit sign.
  const [mant, exp] = x.toExponential().split('e') as [string, string];
  const e = Number(exp);
  return `${mant}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
}

/**
 * The integer and fraction digits of |x| (finite, below 1e21): toFixed(100) writes the exact binary
 * expansion when it ends within 100 decimals, and otherwise rounds at the 100th, far below any digit
 * these formats keep.
 */
function exactDigits(x: number): { intPart: string; frac: string } {
  const [intPart, frac] = Math.abs(x).toFixed(100).split('.') as [string, string];
  return { intPart, frac };
}

/**
 * The digit string `kept` rounded by the digits `rest` that follow it, half to even; one digit
 * longer when the rounding carries out of it ('999' -> '1000').
 */
function roundHalfEven(kept: string, rest: string): string {
  const first = rest[0] ?? '0';
  const tie = first === '5' && /^50*$/.test(rest);
  const last = Number(kept[kept.length - 1] ?? '0');
  if (!(first > '5' || (first === '5' && (!tie || last % 2 === 1)))) return kept;
  const arr = kept.split('').map(Number);
  let i = arr.length - 1;
  while (i >= 0) {
    if (arr[i]! < 9) { arr[i]!++; break; }
    arr[i] = 0;
    i--;
  }
  return (i < 0 ? '1' : '') + arr.join('');
}

/** Python's f'{x:.{digits}f}'. */
export function pythonFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const neg = x < 0 || Object.is(x, -0);
  const { intPart, frac } = exactDigits(x);
  const digitsStr = roundHalfEven(intPart + frac.slice(0, digits), frac.slice(digits));
  const ip = digitsStr.slice(0, digitsStr.length - digits) || '0';
  const fp = digitsStr.slice(digitsStr.length - digits);
  const body = digits > 0 ? `${ip}.${fp}` : ip;
  return neg ? `-${body}` : body;
}

/** Python's f'{x:.{digits}e}'. */
export function pythonExp(x: number, digits = 4): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  const a = Math.abs(x);
  if (a === 0) return `${sign}${(0).toFixed(digits)}e+00`;
  if (a >= 1e21 || a < 1e-60) {
    // Outside the magnitudes exactDigits covers with room to spare: JavaScript's own rounding (an
    // exact tie there is not a value these lines print).
    return sign + a.toExponential(digits).replace(/e([+-])(\d)$/, 'e$10$2');
  }
  const { intPart, frac } = exactDigits(a);
  const all = intPart + frac;
  const lead = all.search(/[1-9]/);
  let exp = intPart.length - 1 - lead;
  let s = roundHalfEven(all.slice(lead, lead + digits + 1), all.slice(lead + digits + 1));
  if (s.length > digits + 1) { // 9.99995... rounded up to 10.0000: one more power of ten
    s = s.slice(0, digits + 1);
    exp += 1;
  }
  const mantissa = digits > 0 ? `${s[0]}.${s.slice(1)}` : s[0]!;
  return `${sign}${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}
