/**
 * Reading the zip container of PyTorch checkpoints, with yauzl.
 *
 * The central directory is read once, record by record from the file descriptor (never the whole file),
 * and kept as a name → entry map. A record's bytes are read on demand, stored or deflated, into one
 * Buffer whose size is checked against the declared uncompressed size (yauzl's validateEntrySizes),
 * after checking that size against a cap BEFORE allocating. zip64 archives are read (checkpoints can be
 * several GB).
 *
 * Every structural fault (truncated file, "end of central directory record signature not found",
 * bad local headers, duplicate names, sizes past the end of the file, any offset the archive gives
 * that lies outside the file: yauzl reads through CheckedFdReader, which checks each read first) is
 * ERR_CHECKPOINT_CORRUPT naming the file (and the record), and so is a record whose bytes fail the
 * CRC-32 the archive records for it. A record over the cap is ERR_CHECKPOINT_UNSAFE.
 *
 * Records can also be read after the archive was closed, from a saved `ZipRecordRef`, by reopening the
 * file (used by lazy tensors): the file's size and mtime must not have changed since it was listed.
 */
import * as fs from 'node:fs';
import * as yauzl from 'yauzl';
import { crc32 } from './crc32';
import { PassThrough, Readable } from 'node:stream';
import { SslInvError } from '../errors';

export interface ZipOptions {
  /** Largest stored (uncompressed) record read into memory, in bytes. Default: the file's size. */
  maxStoredBytes?: number;
  /** Largest deflated record, by declared uncompressed size. Default 64 MiB. */
  maxDeflatedBytes?: number;
  /** Largest number of entries in the central directory. Default 1,000,000. */
  maxEntries?: number;
  /**
   * Check each record's CRC-32 against the archive's (default true). Off only for forensics on a
   * damaged file: a record that fails it holds other bytes than were saved.
   */
  verifyCrc?: boolean;
}

export const DEFAULT_MAX_DEFLATED_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_ENTRIES = 1_000_000;

export interface ZipEntryInfo {
  readonly name: string;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  /** 0 stored, 8 deflated; anything else cannot be read. */
  readonly compressionMethod: number;
}

/** What is needed to read one record again later, after the archive was closed. */
export interface ZipRecordRef extends ZipEntryInfo {
  readonly file: string;
  readonly fileSize: number;
  readonly mtimeMs: number;
  /** @internal yauzl's entry object. */
  readonly entry: yauzl.Entry;
}

function corrupt(file: string, message: string, field?: string, cause?: unknown): SslInvError {
  return new SslInvError('ERR_CHECKPOINT_CORRUPT', message, { file, ...(field !== undefined ? { field } : {}), ...(cause !== undefined ? { cause } : {}) });
}

function wrap(e: unknown, file: string, field?: string): SslInvError {
  if (e instanceof SslInvError) return e;
  const msg = (e as Error)?.message ?? String(e);
  return corrupt(file, `corrupt zip archive: ${msg}`, field, e);
}

/**
 * yauzl's reader of the descriptor, with every read checked against the file's size first. yauzl
 * seeks to offsets taken from the archive (a zip64 locator's 64-bit offset among them); its own fd
 * reader hands them to fs.read, which throws synchronously inside an I/O callback for positions past
 * 2^53, and that would take the whole process down. Here such a read fails through its callback,
 * and becomes ERR_CHECKPOINT_CORRUPT. Ownership of the descriptor is yauzl's usual: the last unref
 * (ZipFile.close() and its streams' ends) closes it.
 */
class CheckedFdReader extends yauzl.RandomAccessReader {
  constructor(private readonly fd: number, private readonly size: number) {
    super();
  }

  private outside(position: number, length: number): Error | undefined {
    if (!Number.isSafeInteger(position) || !Number.isSafeInteger(length) || position < 0 || length < 0 || position + length > this.size) {
      return new Error(`a read of ${length} bytes at offset ${position} is outside the file (${this.size} bytes)`);
    }
    return undefined;
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void): void {
    const bad = this.outside(position, length);
    if (bad) {
      setImmediate(() => callback(bad));
      return;
    }
    // yauzl asks for exact lengths: a short read (the file shrank) is an error, not zeros.
    const readFrom = (done: number): void => {
      if (done === length) return callback(null);
      fs.read(this.fd, buffer, offset + done, length - done, position + done, (err, n) => {
        if (err) return callback(err);
        if (n === 0) return callback(new Error(`unexpected end of file at offset ${position + done}`));
        readFrom(done + n);
      });
    };
    readFrom(0);
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const bad = this.outside(start, end - start);
    if (bad) {
      const failed = new PassThrough();
      setImmediate(() => failed.destroy(bad));
      return failed;
    }
    // Not fs.createReadStream({ fd }): destroying that stream (yauzl does, on a size mismatch) closes
    // the descriptor even with autoClose off, and the reader's own close would then close it twice.
    const fd = this.fd;
    let pos = start;
    return new Readable({
      read(want: number) {
        const len = Math.min(want, end - pos);
        if (len <= 0) {
          this.push(null);
          return;
        }
        const buf = Buffer.allocUnsafe(len);
        fs.read(fd, buf, 0, len, pos, (err, got) => {
          if (err) return void this.destroy(err);
          if (got === 0) return void this.destroy(new Error(`unexpected end of file at offset ${pos}`));
          pos += got;
          this.push(got === len ? buf : buf.subarray(0, got));
        });
      },
    });
  }

  override close(callback: (err: Error | null) => void): void {
    fs.close(this.fd, (err) => callback(err ?? null));
  }
}

function fromFd(fd: number, size: number, file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    const reader = new CheckedFdReader(fd, size);
    yauzl.fromRandomAccessReader(reader, size, { lazyEntries: true, autoClose: false, validateEntrySizes: true, decodeStrings: true, strictFileNames: false }, (err, zf) => {
      if (err || !zf) reject(wrap(err ?? new Error('no zipfile'), file));
      else resolve(zf);
    });
  });
}

function openStream(zf: yauzl.ZipFile, entry: yauzl.Entry): Promise<Readable> {
  return new Promise((resolve, reject) => {
    try {
      zf.openReadStream(entry, (err, stream) => {
        if (err || !stream) reject(err ?? new Error('no stream'));
        else resolve(stream);
      });
    } catch (e) {
      reject(e);
    }
  });
}

function capFor(info: ZipEntryInfo, fileSize: number, opts: ZipOptions): number {
  if (info.compressionMethod === 0) return opts.maxStoredBytes ?? fileSize;
  return opts.maxDeflatedBytes ?? DEFAULT_MAX_DEFLATED_BYTES;
}

/** Checks the declared size against the cap (before any allocation), then streams the record into one Buffer. */
async function readEntryFrom(zf: yauzl.ZipFile, info: ZipEntryInfo & { entry: yauzl.Entry }, file: string, fileSize: number, opts: ZipOptions, maxBytes?: number): Promise<Buffer> {
  const name = info.name;
  if (info.compressionMethod !== 0 && info.compressionMethod !== 8) {
    throw new SslInvError('ERR_CHECKPOINT_UNSUPPORTED', `record uses compression method ${info.compressionMethod} (only stored and deflated are read)`, { file, field: name });
  }
  if (info.entry.isEncrypted()) throw new SslInvError('ERR_CHECKPOINT_UNSUPPORTED', 'record is encrypted', { file, field: name });
  if (info.compressionMethod === 0 && info.uncompressedSize > fileSize) {
    throw corrupt(file, `stored record declares ${info.uncompressedSize} bytes, more than the whole file (${fileSize})`, name);
  }
  const cap = Math.min(capFor(info, fileSize, opts), maxBytes ?? Infinity);
  if (info.uncompressedSize > cap) {
    throw new SslInvError('ERR_CHECKPOINT_UNSAFE',
      `record declares ${info.uncompressedSize} bytes (${info.compressionMethod === 8 ? 'deflated' : 'stored'}), over the cap of ${cap} bytes; refused before reading`,
      { file, field: name });
  }
  const size = info.uncompressedSize;
  const out = Buffer.allocUnsafe(size);
  let stream: Readable;
  try {
    stream = await openStream(zf, info.entry);
  } catch (e) {
    throw wrap(e, file, name);
  }
  let got = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (got + chunk.length > size) throw corrupt(file, `record has more than its declared ${size} bytes`, name);
      chunk.copy(out, got);
      got += chunk.length;
    }
  } catch (e) {
    stream.destroy();
    throw wrap(e, file, name);
  }
  if (got !== size) throw corrupt(file, `record has ${got} bytes, declared ${size}`, name);
  // The CRC-32 torch.save (and every zip writer) records, so that a flipped bit in a stored weight is
  // an error here instead of a silently different network. A recorded 0 is taken as "none written":
  // torch.save under torch.serialization.set_crc32_options(False) writes 0 (a real CRC of 0 is a
  // 1 in 2^32 case that then goes unchecked).
  const recorded = info.entry.crc32 >>> 0;
  if (opts.verifyCrc !== false && recorded !== 0) {
    const actual = crc32(out);
    if (actual !== recorded) {
      throw corrupt(file, `record's data has CRC-32 ${hex32(actual)}, the archive records ${hex32(recorded)}: the file is damaged`, name);
    }
  }
  return out;
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/**
 * Opens the file as a raw descriptor. Ownership: once `fromFd` succeeds, the ZipFile owns the
 * descriptor and closes it in `close()` (after its streams end); before that, the caller closes it.
 * (A FileHandle must not be used here: yauzl closes the number itself, and a FileHandle would close it again.)
 */
async function openFd(file: string): Promise<{ fd: number; size: number; mtimeMs: number }> {
  let fd: number;
  try {
    fd = await new Promise<number>((resolve, reject) => fs.open(file, 'r', (err, d) => (err ? reject(err) : resolve(d))));
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT') throw new SslInvError('ERR_FILE_NOT_FOUND', 'no such file', { file, cause: e });
    throw new SslInvError('ERR_FILE_READ', `cannot open: ${(e as Error).message}`, { file, cause: e });
  }
  try {
    const st = await new Promise<fs.Stats>((resolve, reject) => fs.fstat(fd, (err, s) => (err ? reject(err) : resolve(s))));
    if (!st.isFile()) throw new SslInvError('ERR_FILE_READ', 'not a regular file', { file });
    return { fd, size: st.size, mtimeMs: st.mtimeMs };
  } catch (e) {
    closeFd(fd);
    throw e instanceof SslInvError ? e : new SslInvError('ERR_FILE_READ', `cannot stat: ${(e as Error).message}`, { file, cause: e });
  }
}

function closeFd(fd: number): void {
  fs.close(fd, () => undefined);
}

export class ZipArchive {
  private readonly entries = new Map<string, ZipEntryInfo & { entry: yauzl.Entry }>();
  private readonly order: string[] = [];
  private closed = false;

  private constructor(
    readonly file: string,
    readonly size: number,
    readonly mtimeMs: number,
    private readonly zf: yauzl.ZipFile,
    private readonly opts: ZipOptions,
  ) {}

  /** Opens an archive and reads its central directory. */
  static async open(file: string, opts: ZipOptions = {}): Promise<ZipArchive> {
    const { fd, size, mtimeMs } = await openFd(file);
    let zf: yauzl.ZipFile;
    try {
      zf = await fromFd(fd, size, file);
    } catch (e) {
      closeFd(fd);
      throw wrap(e, file);
    }
    // From here on the ZipFile owns the descriptor.
    try {
      const maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
      if (zf.entryCount > maxEntries) throw corrupt(file, `central directory declares ${zf.entryCount} entries (limit ${maxEntries})`);
      const za = new ZipArchive(file, size, mtimeMs, zf, opts);
      await za.readDirectory();
      return za;
    } catch (e) {
      zf.close();
      throw wrap(e, file);
    }
  }

  private readDirectory(): Promise<void> {
    const zf = this.zf;
    return new Promise((resolve, reject) => {
      const onEntry = (entry: yauzl.Entry) => {
        const name = entry.fileName;
        if (this.entries.has(name)) {
          cleanup();
          reject(corrupt(this.file, `two records are named '${name}'`, name));
          return;
        }
        this.entries.set(name, {
          name,
          compressedSize: entry.compressedSize,
          uncompressedSize: entry.uncompressedSize,
          compressionMethod: entry.compressionMethod,
          entry,
        });
        this.order.push(name);
        zf.readEntry();
      };
      const onEnd = () => {
        cleanup();
        resolve();
      };
      const onError = (err: Error) => {
        cleanup();
        reject(wrap(err, this.file));
      };
      const cleanup = () => {
        zf.off('entry', onEntry);
        zf.off('end', onEnd);
        zf.off('error', onError);
      };
      zf.on('entry', onEntry);
      zf.on('end', onEnd);
      zf.on('error', onError);
      zf.readEntry();
    });
  }

  /** Record names in central-directory order. */
  names(): string[] {
    return [...this.order];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  entry(name: string): ZipEntryInfo | undefined {
    const e = this.entries.get(name);
    if (!e) return undefined;
    const { entry: _entry, ...info } = e;
    return info;
  }

  /** A reference from which the record can be read later with `readZipRecord`, after `close()`. */
  ref(name: string): ZipRecordRef {
    const e = this.entries.get(name);
    if (!e) throw corrupt(this.file, 'no such record', name);
    return { ...e, file: this.file, fileSize: this.size, mtimeMs: this.mtimeMs };
  }

  /** Reads a whole record. `maxBytes` lowers the cap for this read. */
  async read(name: string, opts: { maxBytes?: number } = {}): Promise<Buffer> {
    if (this.closed) throw new SslInvError('ERR_INVALID_ARGUMENT', 'zip archive is closed', { file: this.file, field: name });
    const e = this.entries.get(name);
    if (!e) throw corrupt(this.file, 'no such record', name);
    return readEntryFrom(this.zf, e, this.file, this.size, this.opts, opts.maxBytes);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.zf.close();
  }
}

/** Reads one record from a saved reference, reopening the file; refuses a file changed since it was listed. */
export async function readZipRecord(ref: ZipRecordRef, opts: ZipOptions & { maxBytes?: number } = {}): Promise<Buffer> {
  const { fd, size, mtimeMs } = await openFd(ref.file);
  let zf: yauzl.ZipFile;
  try {
    if (size !== ref.fileSize || mtimeMs !== ref.mtimeMs) {
      throw corrupt(ref.file, 'file changed on disk since the checkpoint was opened', ref.name);
    }
    zf = await fromFd(fd, size, ref.file);
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  try {
    return await readEntryFrom(zf, ref, ref.file, size, opts, opts.maxBytes);
  } finally {
    zf.close();
  }
}
