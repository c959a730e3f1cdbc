/**
 * Refusing NaN and infinities where they would silently spoil a result (RELIABILITY §7, row 32): the
 * weights of a checkpoint about to be written or just read, whose NaNs would otherwise turn every
 * feature, distance and probe score computed from them into NaN (or, averaged with nanmean as the
 * original does, into a plausible-looking number over fewer values).
 */
import { SslInvError } from '../errors';

/** Index of the first NaN or infinite value of `values`, or -1. */
export function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) {
    // x - x is 0 for a finite x and NaN for NaN and both infinities: one test per value.
    const x = values[i]!;
    if (x - x !== 0) return i;
  }
  return -1;
}

/**
 * Throws ERR_NON_FINITE naming `field` (and `file`, when given) if `values` holds NaN or an infinity.
 * `what` completes the message: why such a value cannot be used there.
 */
export function checkFinite(values: ArrayLike<number>, where: { field: string; file?: string; what: string }): void {
  const i = firstNonFinite(values);
  if (i < 0) return;
  throw new SslInvError('ERR_NON_FINITE', `holds ${String(values[i])} (at index ${i} of ${values.length}): ${where.what}`,
    { field: where.field, ...(where.file !== undefined ? { file: where.file } : {}) });
}
