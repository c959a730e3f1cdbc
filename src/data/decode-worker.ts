/**
 * The decoder process of a DecodePool (decode-pool.ts): decodes image files with decodeImageFile and
 * hands the RGB pixels back through the request's slot file, or, without slot files (Windows, none
 * could be made, or one could not take them), over Node's IPC channel (advanced serialization: one
 * Uint8Array, not JSON).
 *
 * Started by the pool only, under a data-segment cap (`ulimit -d`, RLIMIT_DATA) on Linux, so that a
 * decompression bomb or a codec fault costs this process, never the caller's. Messages:
 *   parent -> child  { id, file, opts, slot? }          one image to decode (opts: DecodeOptions fields)
 *   child -> parent  { type: 'ready', pid }             once, after sharp has loaded
 *                    { type: 'done', id, image }         width, height, format, sourceMode, and either
 *                                                         data (HWC RGB; with slotError when the slot
 *                                                         write failed) or length: the pixels' bytes,
 *                                                         written at offset 0 of the request's slot
 *                    { type: 'failed', id, error }       code, message (without the file prefix), field,
 *                                                         memory (true when an allocation failed)
 * Slots: the pool hands each worker files in memory (tmpfs, already unlinked) as descriptors
 * SLOT_FD_BASE, SLOT_FD_BASE + 1, ...; a request with `slot` gets its pixels there, which costs two
 * kernel copies instead of Node's IPC serialisation, piping and reassembly of megabytes.
 * It exits when the channel closes (the pool closed, or the parent died).
 */
import * as fs from 'node:fs';
import { DecodedImage, DecodeOptions, decodeImageFile } from './decode';
import { SslInvError, isSslInvError } from '../errors';

export interface DecodeRequest {
  id: number;
  file: string;
  opts: Pick<DecodeOptions, 'limitInputPixels' | 'failOn' | 'maxFileBytes' | 'timeoutSeconds'>;
  /** Write the pixels to slot file SLOT_FD_BASE + slot instead of sending them. */
  slot?: number;
}

/** The descriptor of slot 0 in the worker (0-2 are stdio, 3 the IPC channel). */
export const SLOT_FD_BASE = 4;

export interface ImageMeta {
  width: number;
  height: number;
  format: 'jpeg' | 'png';
  sourceMode: string;
}

export interface WorkerError {
  code: string;
  message: string;
  field?: string;
  /** The decode failed to allocate memory (under the pool's cap this means: too large for the cap). */
  memory: boolean;
}

export type WorkerMessage =
  | { type: 'ready'; pid: number }
  | { type: 'done'; id: number; image: ImageMeta & ({ data: Uint8Array; slotError?: string } | { length: number }) }
  | { type: 'failed'; id: number; error: WorkerError };

// What libvips, glibc, V8 and the C++ runtime say when an allocation fails.
const ALLOCATION_FAILED = /out of memory|cannot allocate memory|allocation failed|bad_alloc|ENOMEM/i;

/** The message without the "file: field: " prefix SslInvError adds (the parent adds its own). */
function bareMessage(e: SslInvError): string {
  const where = [e.file, e.field].filter((s) => s !== undefined && s !== '').join(': ');
  return where && e.message.startsWith(`${where}: `) ? e.message.slice(where.length + 2) : e.message;
}

function describe(e: unknown): WorkerError {
  if (isSslInvError(e)) {
    const message = bareMessage(e);
    return { code: e.code, message, ...(e.field !== undefined ? { field: e.field } : {}), memory: ALLOCATION_FAILED.test(message) };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { code: 'ERR_IMAGE_DECODE', message: `cannot decode: ${message}`, memory: ALLOCATION_FAILED.test(message) };
}

function send(m: WorkerMessage): void {
  // The channel may be gone (the pool closed while this decode ran): nothing is waiting for the answer.
  if (process.connected) process.send!(m);
}

/**
 * Serves the pool's requests with `decode` (decodeImageFile; the tests pass one that crashes, hangs
 * or fails on chosen files, to check what the pool does then).
 */
export function main(decode: (file: string, opts: DecodeRequest['opts']) => Promise<DecodedImage> = decodeImageFile): void {
  if (typeof process.send !== 'function') {
    process.stderr.write('decode-worker: started without an IPC channel; it is run by DecodePool only\n');
    process.exitCode = 2;
    return;
  }
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: DecodeRequest) => {
    decode(m.file, m.opts).then(
      (img) => {
        const meta: ImageMeta = { width: img.width, height: img.height, format: img.format, sourceMode: img.sourceMode };
        if (m.slot === undefined) {
          send({ type: 'done', id: m.id, image: { ...meta, data: img.data } });
          return;
        }
        const fd = SLOT_FD_BASE + m.slot;
        try {
          for (let off = 0; off < img.data.length;) off += fs.writeSync(fd, img.data, off, img.data.length - off, off);
        } catch (e) {
          // The slot file cannot take them (tmpfs full: ENOSPC): the channel carries the same bytes,
          // slower, and the pool tells why. The decode itself succeeded; failing the file would drop
          // a good image.
          const slotError = `cannot write the pixels to its slot file (${e instanceof Error ? e.message : String(e)})`;
          send({ type: 'done', id: m.id, image: { ...meta, data: img.data, slotError } });
          return;
        }
        send({ type: 'done', id: m.id, image: { ...meta, length: img.data.length } });
      },
      (e: unknown) => send({ type: 'failed', id: m.id, error: describe(e) }),
    ).catch((e: unknown) => {
      // Only send itself can throw here (the channel closing): the pool is gone or counts this death.
      process.stderr.write(`decode-worker: cannot answer for ${m.file}: ${e instanceof Error ? e.message : String(e)}\n`);
    });
  });
  send({ type: 'ready', pid: process.pid });
}

if (require.main === module) main();
