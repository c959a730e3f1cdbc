/**
 * Typed errors with stable codes.
 *
 * Every error the package throws on bad input is an `SslInvError` whose `code` is one of `ErrorCode`
 * (native errors carry the same codes; see native/core/status.h). Codes are part of the public API:
 * match on `code`, never on the message. Errors about a file name it in `file`, and the offending
 * field, key or record in `field`.
 */

export const ErrorCodes = [
  // arguments and tensors (shared with native/core/status.h)
  'ERR_INVALID_ARGUMENT',
  'ERR_SHAPE_MISMATCH',
  'ERR_DTYPE_MISMATCH',
  'ERR_OUT_OF_MEMORY',
  'ERR_DEVICE_UNAVAILABLE',
  'ERR_NATIVE_INTERNAL',
  'ERR_TENSOR_DISPOSED',
  'ERR_SINGULAR_MATRIX',
  'ERR_NATIVE_LOAD',
  // a CUDA device that faulted (an illegal access, an ECC error): unusable until the process restarts
  'ERR_DEVICE_FAULT',
  // files in general
  'ERR_FILE_NOT_FOUND',
  'ERR_FILE_READ',
  'ERR_FILE_WRITE',
  // checkpoints (zip, pickle, state dicts)
  'ERR_CHECKPOINT_CORRUPT',
  'ERR_CHECKPOINT_UNSAFE',
  'ERR_CHECKPOINT_UNSUPPORTED',
  'ERR_CHECKPOINT_KEYS',
  'ERR_CHECKPOINT_ARCH',
  // arrays
  'ERR_NPY_FORMAT',
  'ERR_MAT_FORMAT',
  // images and data sets
  'ERR_IMAGE_DECODE',
  'ERR_IMAGE_TOO_LARGE',
  'ERR_IMAGE_FORMAT',
  'ERR_DATASET_LAYOUT',
  // a decoder process (DecodePool) cannot be started
  'ERR_DECODE_WORKER',
  // result files read back (the report)
  'ERR_RESULTS_FORMAT',
  // command line
  'ERR_USAGE',
  // ssl-inv selftest: a CUDA device disagreed with the CPU
  'ERR_SELFTEST_FAILED',
  // numbers: a loss, a parameter or a value read from a file that is NaN or infinite
  'ERR_NON_FINITE',
  // a long-running call stopped by the AbortSignal it was given (src/abort.ts)
  'ERR_ABORTED',
] as const;

export type ErrorCode = (typeof ErrorCodes)[number];

export interface ErrorDetails {
  /** The file the error is about. */
  file?: string;
  /** The field, key, record or argument inside it. */
  field?: string;
  /** The underlying error, when this one wraps another. */
  cause?: unknown;
}

export class SslInvError extends Error {
  readonly code: ErrorCode;
  readonly file?: string;
  readonly field?: string;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    const where = [details.file, details.field].filter((s) => s !== undefined && s !== '').join(': ');
    super(where ? `${where}: ${message}` : message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.name = 'SslInvError';
    this.code = code;
    if (details.file !== undefined) this.file = details.file;
    if (details.field !== undefined) this.field = details.field;
  }
}

/** True for errors thrown by this package (ours or the native addon's), which carry a stable code. */
export function isSslInvError(e: unknown): e is SslInvError {
  return e instanceof SslInvError;
}

/**
 * Re-throws an error from the native addon as an SslInvError with the same code, so callers see one
 * error type. Errors without a known code become ERR_NATIVE_INTERNAL.
 */
export function fromNativeError(e: unknown, context?: string): SslInvError {
  if (e instanceof SslInvError) return e;
  const err = e as { code?: unknown; message?: unknown };
  const message = typeof err?.message === 'string' ? err.message : String(e);
  // C++ exceptions that escape a kernel (the addon converts them; see NODE_ADDON_API_CPP_EXCEPTIONS_ALL)
  // carry no code: an allocation failure is still an out-of-memory error.
  const code = typeof err?.code === 'string' && (ErrorCodes as readonly string[]).includes(err.code)
    ? (err.code as ErrorCode)
    : /bad_alloc|bad_array_new_length/.test(message) ? 'ERR_OUT_OF_MEMORY' : 'ERR_NATIVE_INTERNAL';
  // Native messages often name their op already ("conv2d: ..."); say it once.
  const named = !context || message.startsWith(`${context}:`);
  return new SslInvError(code, named ? message : `${context}: ${message}`, { cause: e });
}

/** Runs a native call, converting what it throws with fromNativeError (context: the op's name). */
export function callNative<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw fromNativeError(e, name);
  }
}

/**
 * callNative for an asynchronous native call: a synchronous throw (bad arguments, refused before any
 * work is queued) and the promise's rejection (the kernel's coded error) both become SslInvErrors.
 */
export async function callNativeAsync<T>(name: string, start: () => Promise<T>): Promise<T> {
  const p = callNative(name, start);
  try {
    return await p;
  } catch (e) {
    throw fromNativeError(e, name);
  }
}
