/**
 * Cancellation of the long-running API calls (pretraining, feature extraction, batch loading, the
 * evaluations, the probe searches): each takes an optional `signal: AbortSignal` and looks at it
 * between its units of work (steps, batches, images, transforms, fits). Once the signal is aborted,
 * the call throws SslInvError ERR_ABORTED at the next such point, saying what stopped and where, with
 * the signal's `reason` as `cause`. The unit in progress is finished first: a native kernel, a decode
 * or a synchronous probe fit cannot be interrupted. Tensors the call made are freed as on any error,
 * and files are only ever replaced whole (io/atomic-write.ts), so nothing half-written is left.
 *
 * The check reads `signal.aborted` and nothing more: no 'abort' listener is added, so a signal shared
 * by many calls (or kept for the life of a process) gathers nothing.
 */
import { SslInvError } from './errors';

/** The ERR_ABORTED error for `signal`; `what` says what stopped and where. */
export function abortedError(signal: AbortSignal, what: string): SslInvError {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : '';
  return new SslInvError('ERR_ABORTED', why ? `${what} (aborted: ${why})` : `${what} (aborted)`,
    reason !== undefined ? { cause: reason } : {});
}

/**
 * Throws ERR_ABORTED if `signal` is aborted. `what` is called only then, so the message costs
 * nothing on the way through.
 */
export function throwIfAborted(signal: AbortSignal | undefined, what: () => string): void {
  if (signal?.aborted) throw abortedError(signal, what());
}
