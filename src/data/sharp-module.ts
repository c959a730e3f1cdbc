/**
 * sharp (libvips), loaded on first use rather than when the package is imported. Its prebuilt
 * binary is a per-platform npm package (@img/sharp-<os>-<arch>); an install that lacks it (a lockfile
 * made on another OS, `--omit=optional`) would otherwise make `require('ssl-invariances')` itself
 * throw sharp's uncoded error, taking the checkpoints, tensors, probes and statistics down with the
 * images. Now only decoding and PNG writing need it, and they get ERR_NATIVE_LOAD saying how to fix it.
 */
import type SharpType from 'sharp';
import { SslInvError } from '../errors';

let loaded: typeof SharpType | undefined;

/** The sharp module; ERR_NATIVE_LOAD with its message and the fix when it cannot be loaded. */
export function sharpModule(): typeof SharpType {
  if (loaded) return loaded;
  try {
    // A plain require, not an import: this is what defers loading to the first decode.
    loaded = require('sharp') as typeof SharpType;
  } catch (e) {
    throw new SslInvError('ERR_NATIVE_LOAD', `the image library (sharp) cannot be loaded: ${(e as Error).message.split('\n')[0]}. ` +
      `Reinstall it for this platform: npm install --os=${process.platform} --cpu=${process.arch} sharp`, { cause: e });
  }
  return loaded;
}
