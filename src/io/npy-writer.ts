/**
 * Streaming .npy writer for outputs too large to hold in memory (features of a whole data set).
 *
 * Rows are appended to a temp file next to the target; commit() fsyncs it, renames it over the
 * target and fsyncs the directory; abort() (or any failure) removes the temp file, so a crash or an
 * error never leaves a partial .npy under the target's name. If fewer rows than declared were
 * written (images skipped by policy), commit({ rows }) rewrites the header in place: the shape only
 * shrinks, so the header keeps its length (numpy pads it with spaces to a multiple of 64 bytes).
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { SslInvError } from '../errors';
import { tempNameFor, trackTempFile, untrackTempFile } from './atomic-write';

/** The dtypes we write, with numpy's little-endian descr strings. */
export const NPY_WRITE_DESCR = { float32: '<f4', float64: '<f8', int64: '<i8', int32: '<i4', uint8: '|u1' } as const;
export type NpyWriterDType = keyof typeof NPY_WRITE_DESCR;

/** A version 1.0 .npy header for a C-ordered little-endian array, padded as numpy pads it. */
export function npyHeader(dtype: NpyWriterDType, shape: readonly number[], minLength = 0): Buffer {
  const shapeRepr = shape.length === 0 ? '()' : shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${NPY_WRITE_DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeRepr}, }`;
  let total = 10 + dict.length + 1;
  total = Math.max(Math.ceil(total / 64) * 64, minLength);
  dict += ' '.repeat(total - 10 - dict.length - 1) + '\n';
  const out = Buffer.alloc(total);
  out.write('\x93NUMPY', 0, 'latin1');
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(dict.length, 8);
  out.write(dict, 10, 'latin1');
  return out;
}

export class NpyRowWriter {
  private fh: FileHandle | undefined;
  private written = 0;
  private readonly headerLength: number;

  private constructor(
    private readonly file: string,
    private readonly tmp: string,
    fh: FileHandle,
    private readonly dtype: NpyWriterDType,
    private readonly rowShape: readonly number[],
    private readonly rows: number,
    headerLength: number,
  ) {
    this.fh = fh;
    this.headerLength = headerLength;
  }

  /** Starts `file` with room for `rows` rows of `rowShape`. */
  static async open(file: string, dtype: NpyWriterDType, rowShape: readonly number[], rows: number): Promise<NpyRowWriter> {
    const tmp = tempNameFor(file);
    let fh: FileHandle;
    try {
      fh = await fsp.open(tmp, 'wx');
      trackTempFile(tmp);
    } catch (e) {
      throw new SslInvError('ERR_FILE_WRITE', `cannot create the output (${(e as Error).message})`, { file, cause: e });
    }
    const header = npyHeader(dtype, [rows, ...rowShape]);
    const w = new NpyRowWriter(file, tmp, fh, dtype, rowShape, rows, header.length);
    await w.write(header);
    return w;
  }

  private get rowElements(): number {
    return this.rowShape.reduce((a, b) => a * b, 1);
  }

  private async write(buf: Uint8Array): Promise<void> {
    if (!this.fh) throw new SslInvError('ERR_FILE_WRITE', 'the writer is closed', { file: this.file });
    try {
      let off = 0;
      while (off < buf.byteLength) {
        const { bytesWritten } = await this.fh.write(buf, off, buf.byteLength - off);
        off += bytesWritten;
      }
    } catch (e) {
      await this.abort();
      throw new SslInvError('ERR_FILE_WRITE', `write failed (${(e as Error).message})`, { file: this.file, cause: e });
    }
  }

  /** Appends whole rows (data.length must be a multiple of the row size). */
  async append(data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array): Promise<void> {
    const per = this.rowElements;
    if (data.length % per !== 0) {
      throw new SslInvError('ERR_SHAPE_MISMATCH', `append: ${data.length} values are not whole rows of ${per}`, { file: this.file });
    }
    const n = data.length / per;
    if (this.written + n > this.rows) {
      throw new SslInvError('ERR_SHAPE_MISMATCH', `append: more than the ${this.rows} declared rows`, { file: this.file });
    }
    await this.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.written += n;
  }

  /** Finishes the file. `rows` (default: the declared count) must equal the rows appended. */
  async commit(opts: { rows?: number } = {}): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new SslInvError('ERR_FILE_WRITE', 'the writer is closed', { file: this.file });
    const rows = opts.rows ?? this.rows;
    if (rows !== this.written || rows > this.rows) {
      await this.abort();
      throw new SslInvError('ERR_SHAPE_MISMATCH', `commit: ${this.written} rows written, ${rows} expected`, { file: this.file });
    }
    try {
      if (rows !== this.rows) {
        const header = npyHeader(this.dtype, [rows, ...this.rowShape], this.headerLength);
        await fh.write(header, 0, header.length, 0);
      }
      await fh.sync();
      await fh.close();
      this.fh = undefined;
      await fsp.rename(this.tmp, this.file);
      untrackTempFile(this.tmp);
      const dir = await fsp.open(path.dirname(this.file), 'r').catch(() => undefined);
      await dir?.sync().catch(() => undefined);
      await dir?.close();
    } catch (e) {
      await this.abort();
      throw new SslInvError('ERR_FILE_WRITE', `cannot finish the output (${(e as Error).message})`, { file: this.file, cause: e });
    }
  }

  /** Drops the temp file; the target is untouched. Safe to call more than once. */
  async abort(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close().catch(() => undefined);
    await fsp.rm(this.tmp, { force: true }).catch(() => undefined);
    untrackTempFile(this.tmp);
  }
}
