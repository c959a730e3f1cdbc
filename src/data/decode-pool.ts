/**
 * DecodePool: image decoding in separate, memory-capped processes (RELIABILITY.md §4: "decode in a
 * memory-capped worker"). The pixel limit trusts the header; the codec itself may still allocate far
 * more, or fault, on a crafted file. Here such a file costs a decoder process, and the caller gets a
 * coded error naming the file while its own process, and every other image, carry on.
 *
 *   const pool = new DecodePool({ workers: 4, memoryMiB: 2048 });
 *   try { const img = await decodeImageFile(file, { decoder: pool }); } finally { await pool.close(); }
 *
 * Pixels are those of in-process decodeImageFile (the same code runs in the child: decode-worker.ts),
 * so results do not depend on where an image was decoded. They come back through per-request slot
 * files in memory (tmpfs /dev/shm where there is one, unlinked as soon as both sides hold them), not
 * through Node's IPC channel, which would copy megabytes several more times (serialise, pipe chunks,
 * concatenate, deserialise).
 *
 * Rules (what happens is decided per file, not by what shared its process):
 *   - Each worker decodes up to `inFlightPerWorker` files at once, under one data-segment cap
 *     (RLIMIT_DATA via `ulimit -d`, Linux; see `memoryCapApplied`).
 *   - A worker that dies (signal, abort, V8 out of memory, the hard timeout's SIGKILL) while decoding
 *     several files takes nothing down with it: each of those files is decoded again alone in a worker
 *     of its own. A file that kills a worker while it is alone is refused with ERR_IMAGE_DECODE (its
 *     file, the signal or exit code, the worker's last stderr line). The same holds for an allocation
 *     failure: shared, retried alone; alone, ERR_IMAGE_TOO_LARGE naming the cap.
 *   - A retry alone waits for an idle worker: a spare the pool starts for it (one beyond `workers`),
 *     or one whose files are done. Its outcome, not its timing, is what the rules fix.
 *   - `timeoutSeconds`: a file not decoded within it (from when its worker received it) has its worker
 *     killed; alone, ERR_IMAGE_DECODE "took longer than ...".
 *   - Dead workers are replaced on demand. A worker that cannot start (3 failures in a row) fails
 *     every pending decode with ERR_DECODE_WORKER, naming what the child printed.
 *   - The pool does not keep Node's event loop alive while nothing is pending, so a forgotten close()
 *     does not hang the process; close() ends the workers and refuses later decodes
 *     (`await using pool = new DecodePool()` calls it through Symbol.asyncDispose).
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCode, ErrorCodes, SslInvError } from '../errors';
import type { DecodedImage, DecodeOptions, ImageDecoder } from './decode';
import type { DecodeRequest, WorkerMessage } from './decode-worker';

export interface DecodePoolOptions {
  /** Decoder processes (default: the number of CPUs, at most 4; each decodes several files at once). */
  workers?: number;
  /** Files decoded at once by one worker (default 4). */
  inFlightPerWorker?: number;
  /**
   * Cap on each worker's data segment (heap and private mappings), in MiB; false: none. Default 2048,
   * meant to leave room for the largest image Pillow opens without its DecompressionBombError (179M
   * pixels, 537 MB as RGB) and a copy of it. Below ~256 a worker cannot start (Node and sharp need
   * about 200 MiB).
   */
  memoryMiB?: number | false;
  /** Hard wall-clock limit per file, enforced by killing its worker; 0 or absent: none. */
  timeoutSeconds?: number;
  /** Told of each worker that died and why, and of a cap that cannot be applied on this platform. */
  onNotice?: (line: string) => void;
  /** The worker's script (default: lib/data/decode-worker.js); the tests give one with faults. */
  workerScript?: string;
  /**
   * Seconds a worker may take to start (load Node and sharp) before it is killed and counted as a
   * failed start (default 30). Under too small a memory cap Node neither starts nor exits.
   */
  startTimeoutSeconds?: number;
  /**
   * Folder for the slot files that carry the pixels back (each unlinked at once). Default: /dev/shm
   * when it is a writable folder, else the temp folder. false: no slot files, the pixels go over the
   * IPC channel (as on Windows). A folder where no file can be made gives a notice and the channel.
   */
  slotFolder?: string | false;
}

export interface DecodePoolStats {
  decoded: number;
  refused: number;
  /** Workers that died (crash, cap, timeout kill). */
  workerDeaths: number;
  /** Files decoded again alone after their worker died or ran out of memory with others in flight. */
  retriedAlone: number;
  /** Decoded images whose pixels came back through a slot file (the others: over the IPC channel). */
  viaSlotFiles: number;
  /** Whether the memory cap is enforced (Linux, and memoryMiB not false). */
  memoryCapApplied: boolean;
}

const DEFAULT_MEMORY_MIB = 2048;
/** A slot file larger than this after a read is cut back to 0 bytes, returning its pages. */
const SLOT_KEEP_BYTES = 64 << 20;

/** Where slot files go: /dev/shm (memory) when it is a writable folder, else the temp folder. */
function slotFolder(): string {
  try {
    fs.accessSync('/dev/shm', fs.constants.W_OK);
    if (fs.statSync('/dev/shm').isDirectory()) return '/dev/shm';
  } catch {
    // no tmpfs here
  }
  return os.tmpdir();
}

/** An anonymous read-write file: created in a private folder, then unlinked, folder and all. */
function anonymousFile(where: string): number {
  const dir = fs.mkdtempSync(path.join(where, 'ssl-inv-decode-'));
  const file = path.join(dir, 'slot');
  try {
    return fs.openSync(file, 'w+', 0o600);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const STDERR_KEEP = 2048;
const START_FAILURES_ALLOWED = 3;

interface Job {
  id: number;
  file: string;
  opts: DecodeRequest['opts'];
  /** Must run alone in its worker (a retry after a shared failure). */
  alone: boolean;
  /** Another file was in flight in its worker at some time while it was: a failure may be theirs. */
  shared: boolean;
  resolve: (img: DecodedImage) => void;
  reject: (e: SslInvError) => void;
  timer?: NodeJS.Timeout;
  timedOut?: boolean;
  /** The slot of its worker that receives its pixels. */
  slot?: number;
}

interface Worker {
  child: ChildProcess;
  ready: boolean;
  jobs: Map<number, Job>;
  /** Running a job that must be alone: nothing else is sent to it meanwhile. */
  exclusive: boolean;
  stderrTail: string;
  dead: boolean;
  startTimer?: NodeJS.Timeout;
  /** This process's descriptors of the worker's slot files, and which are free. */
  slotFds: number[];
  freeSlots: number[];
}

/**
 * The compiled worker beside this module (lib/data, or build-bench/src/data for the benchmarks); under
 * ts-node (the tests) the package's lib/data/decode-worker.js, which `npm test` builds first.
 */
export function workerScriptPath(): string {
  const beside = path.join(__dirname, 'decode-worker.js');
  return fs.existsSync(beside) ? beside : path.resolve(__dirname, '..', '..', 'lib', 'data', 'decode-worker.js');
}

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `${name}: expected an integer >= 1, got ${v}`);
  }
  return v;
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines.length > 0 ? lines[lines.length - 1]! : '';
}

export class DecodePool implements ImageDecoder {
  private readonly workerCount: number;
  private readonly inFlightPerWorker: number;
  private readonly memoryMiB: number | false;
  private readonly timeoutMs: number;
  private readonly startTimeoutMs: number;
  private readonly notice: (line: string) => void;
  private readonly script: string;
  private readonly slotDir: string | undefined;
  private readonly workers: Worker[] = [];
  private readonly queue: Job[] = [];       // new files
  private readonly aloneQueue: Job[] = [];  // files to retry alone (served first)
  private nextId = 1;
  private startFailures = 0;
  private closed = false;
  private readonly counts = { decoded: 0, refused: 0, workerDeaths: 0, retriedAlone: 0, viaSlotFiles: 0 };
  readonly memoryCapApplied: boolean;

  constructor(opts: DecodePoolOptions = {}) {
    const cpus = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
    this.workerCount = positiveInt('workers', opts.workers ?? Math.max(1, Math.min(4, cpus)));
    this.inFlightPerWorker = positiveInt('inFlightPerWorker', opts.inFlightPerWorker ?? 4);
    const mem = opts.memoryMiB ?? DEFAULT_MEMORY_MIB;
    if (mem !== false && !(Number.isSafeInteger(mem) && mem >= 1)) {
      throw new SslInvError('ERR_INVALID_ARGUMENT', `memoryMiB: expected an integer >= 1 or false, got ${String(mem)}`);
    }
    this.memoryMiB = mem;
    const timeout = opts.timeoutSeconds ?? 0;
    if (!(Number.isFinite(timeout) && timeout >= 0)) {
      throw new SslInvError('ERR_INVALID_ARGUMENT', `timeoutSeconds: expected a number >= 0, got ${timeout}`);
    }
    this.timeoutMs = timeout * 1000;
    const startTimeout = opts.startTimeoutSeconds ?? 30;
    if (!(Number.isFinite(startTimeout) && startTimeout > 0)) {
      throw new SslInvError('ERR_INVALID_ARGUMENT', `startTimeoutSeconds: expected a number > 0, got ${startTimeout}`);
    }
    this.startTimeoutMs = startTimeout * 1000;
    this.notice = opts.onNotice ?? (() => undefined);
    this.script = opts.workerScript ?? workerScriptPath();
    // Windows cannot hand extra descriptors to a child this way: the pixels go over the channel there.
    this.slotDir = process.platform === 'win32' || opts.slotFolder === false ? undefined : opts.slotFolder ?? slotFolder();
    if (!fs.existsSync(this.script)) {
      throw new SslInvError('ERR_DECODE_WORKER', 'the decoder process script is missing (build the TypeScript: npm run build:ts)', { file: this.script });
    }
    // RLIMIT_DATA covers malloc's heap and its large private mappings on Linux >= 4.7; other systems
    // either ignore it for mappings (macOS) or have no `ulimit` (Windows).
    this.memoryCapApplied = mem !== false && process.platform === 'linux';
    if (mem !== false && !this.memoryCapApplied) {
      this.notice(`decode workers: a memory cap cannot be applied on ${process.platform}; they run without one`);
    }
  }

  get stats(): DecodePoolStats {
    return { ...this.counts, memoryCapApplied: this.memoryCapApplied };
  }

  /** Decodes one file in a worker; the same result or coded error as decodeImageFile(file, opts). */
  decodeFile(file: string, opts: DecodeOptions = {}): Promise<DecodedImage> {
    if (this.closed) {
      return Promise.reject(new SslInvError('ERR_INVALID_ARGUMENT', 'the decode pool is closed', { file }));
    }
    const { limitInputPixels, failOn, maxFileBytes, timeoutSeconds } = opts;
    const req: DecodeRequest['opts'] = {
      ...(limitInputPixels !== undefined ? { limitInputPixels } : {}), ...(failOn !== undefined ? { failOn } : {}),
      ...(maxFileBytes !== undefined ? { maxFileBytes } : {}), ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
    };
    return new Promise<DecodedImage>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, file, opts: req, alone: false, shared: false, resolve, reject });
      this.pump();
    });
  }

  /** Ends the workers; decodes still pending are refused. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pending = [...this.aloneQueue.splice(0), ...this.queue.splice(0)];
    for (const w of this.workers) pending.push(...w.jobs.values());
    for (const job of pending) this.fail(job, new SslInvError('ERR_INVALID_ARGUMENT', 'the decode pool was closed before this file was decoded', { file: job.file }));
    await Promise.all(this.workers.map((w) => new Promise<void>((res) => {
      clearTimeout(w.startTimer);
      if (w.dead || w.child.exitCode !== null || w.child.signalCode !== null) return res();
      // 'exit', not 'close': a channel the parent disconnected never counts towards 'close'.
      w.child.once('exit', () => { clearTimeout(kill); res(); });
      w.child.ref();  // unreferenced while idle: without this the loop could end before 'exit'
      // A started worker exits when its channel closes; one still starting, or stuck, is killed.
      if (w.ready && w.child.connected) w.child.disconnect();
      else w.child.kill('SIGKILL');
      const kill = setTimeout(() => w.child.kill('SIGKILL'), 5000);
    })));
    for (const w of this.workers) {
      w.dead = true;
      for (const fd of w.slotFds) fs.closeSync(fd);
      w.slotFds = [];
    }
    this.workers.length = 0;
  }

  /** For `await using` declarations: the same as close(). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private pending(): number {
    return this.queue.length + this.aloneQueue.length + this.workers.reduce((s, w) => s + w.jobs.size, 0);
  }

  private spawnWorker(): Worker {
    const env = { ...process.env, UV_THREADPOOL_SIZE: String(Math.max(4, this.inFlightPerWorker)) };
    let slotFds: number[] = [];
    try {
      if (this.slotDir !== undefined) for (let i = 0; i < this.inFlightPerWorker; i++) slotFds.push(anonymousFile(this.slotDir));
    } catch (e) {
      // No room for them: the pixels go over the channel (slower, the same bytes).
      for (const fd of slotFds) fs.closeSync(fd);
      slotFds = [];
      this.notice(`decode workers: no slot files in ${this.slotDir} (${(e as Error).message}); pixels go over the IPC channel`);
    }
    // 0-2 stdio, 3 the channel, then the slot files: the child sees them from SLOT_FD_BASE (4) on.
    const stdio: ('ignore' | 'pipe' | 'ipc' | number)[] = ['ignore', 'ignore', 'pipe', 'ipc', ...slotFds];
    const child = this.memoryCapApplied
      // $1: the cap in KiB, $2: node, $3: the script. exec keeps the IPC descriptor and the environment.
      ? spawn('/bin/sh', ['-c', 'ulimit -d "$1" && exec "$2" "$3"', 'sh', String((this.memoryMiB as number) * 1024), process.execPath, this.script],
        { stdio, env, serialization: 'advanced' })
      : spawn(process.execPath, [this.script], { stdio, env, serialization: 'advanced' });
    const w: Worker = { child, ready: false, jobs: new Map(), exclusive: false, stderrTail: '', dead: false,
      slotFds, freeSlots: slotFds.map((_, i) => i) };
    w.startTimer = setTimeout(() => {
      w.stderrTail += `\nnot ready after ${this.startTimeoutMs / 1000} s`;
      child.kill('SIGKILL');
    }, this.startTimeoutMs);
    child.stderr!.setEncoding('utf8');
    // Never what keeps the loop alive (refLoop refs the process and channel while files are pending).
    (child.stderr as unknown as { unref?: () => void }).unref?.();
    child.stderr!.on('data', (s: string) => { w.stderrTail = (w.stderrTail + s).slice(-STDERR_KEEP); });
    child.on('message', (m: WorkerMessage) => this.onMessage(w, m));
    child.on('error', (e) => {
      w.stderrTail += `\n${e.message}`;
      if (child.pid === undefined) this.onExit(w, null, null);  // it never started: no 'close' follows
    });
    // 'close', not 'exit': by then every message the worker sent has been delivered.
    child.on('close', (code, signal) => this.onExit(w, code, signal));
    this.workers.push(w);
    return w;
  }

  private onMessage(w: Worker, m: WorkerMessage): void {
    if (m.type === 'ready') {
      clearTimeout(w.startTimer);
      w.ready = true;
      this.startFailures = 0;
      this.pump();
      return;
    }
    const job = w.jobs.get(m.id);
    if (!job) return;
    w.jobs.delete(m.id);
    if (job.alone) w.exclusive = false;
    if (m.type === 'failed') this.freeSlot(w, job);
    if (m.type === 'done') {
      let data: Uint8Array;
      try {
        if ('data' in m.image) {
          data = m.image.data;
          // Its slot file could not take the pixels (tmpfs full): the same bytes came over the channel.
          if (m.image.slotError !== undefined) this.notice(`decode worker ${w.child.pid}: ${m.image.slotError}; the pixels of ${job.file} came over the IPC channel`);
        } else {
          data = this.readSlot(w, job, m.image.length);
          this.counts.viaSlotFiles++;
        }
      } catch (e) {
        this.freeSlot(w, job);
        this.fail(job, new SslInvError('ERR_FILE_READ', `cannot read the pixels back from the decode worker's slot file: ${(e as Error).message}`, { file: job.file }));
        this.pump();
        return;
      }
      this.freeSlot(w, job);
      this.counts.decoded++;
      this.settle(job);
      const { width, height, format, sourceMode } = m.image;
      job.resolve({ data, width, height, channels: 3, format, sourceMode });
    } else if (m.error.memory && job.shared && !job.alone) {
      // Others in this worker shared the cap: decide this file's fate alone.
      this.retryAlone(job);
    } else if (m.error.memory) {
      this.fail(job, new SslInvError('ERR_IMAGE_TOO_LARGE', `decoding needs more memory than a decode worker may use ` +
        `(${this.memoryMiB === false ? 'no cap' : `${this.memoryMiB} MiB`}): ${m.error.message}`, { file: job.file }));
    } else {
      const code: ErrorCode = (ErrorCodes as readonly string[]).includes(m.error.code) ? m.error.code as ErrorCode : 'ERR_IMAGE_DECODE';
      this.fail(job, new SslInvError(code, m.error.message, { file: job.file, ...(m.error.field !== undefined ? { field: m.error.field } : {}) }));
    }
    this.pump();
  }

  private onExit(w: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    if (w.dead) return;
    w.dead = true;
    clearTimeout(w.startTimer);
    for (const fd of w.slotFds) fs.closeSync(fd);
    w.slotFds = [];
    this.workers.splice(this.workers.indexOf(w), 1);
    if (this.closed) return;
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const said = lastLine(w.stderrTail);
    const jobs = [...w.jobs.values()];
    w.jobs.clear();
    for (const job of jobs) job.slot = undefined;
    if (!w.ready) {
      // It never started: not the files' fault. Put them back, and give up after repeated failures.
      this.startFailures++;
      for (const job of jobs) (job.alone ? this.aloneQueue : this.queue).unshift(job);
      if (this.startFailures >= START_FAILURES_ALLOWED) {
        const err = (file?: string) => new SslInvError('ERR_DECODE_WORKER', `a decode worker cannot start: it ${how}` +
          `${said ? ` (${said})` : ''}${this.memoryCapApplied ? `; its memory cap is ${this.memoryMiB} MiB` : ''}`, file !== undefined ? { file } : {});
        for (const job of [...this.aloneQueue.splice(0), ...this.queue.splice(0)]) this.fail(job, err(job.file));
        this.startFailures = 0;
      }
      this.pump();
      return;
    }
    this.counts.workerDeaths++;
    this.notice(`decode worker ${w.child.pid} ${how} with ${jobs.length} file(s) in flight${said ? `: ${said}` : ''}`);
    for (const job of jobs) {
      if (job.alone || !job.shared) {
        const why = job.timedOut ? `took longer than ${this.timeoutMs / 1000} s to decode (its decode worker was killed)`
          : `the decode worker ${how} while decoding this file alone${said ? ` (${said})` : ''}`;
        this.fail(job, new SslInvError('ERR_IMAGE_DECODE', why, { file: job.file }));
      } else {
        this.retryAlone(job);
      }
    }
    this.pump();
  }

  private retryAlone(job: Job): void {
    this.settle(job);
    job.alone = true;
    job.shared = false;
    job.timedOut = false;
    this.counts.retriedAlone++;
    this.aloneQueue.push(job);
  }

  private settle(job: Job): void {
    if (job.timer) clearTimeout(job.timer);
    job.timer = undefined;
  }

  private fail(job: Job, e: SslInvError): void {
    this.settle(job);
    this.counts.refused++;
    job.reject(e);
  }

  private sendTo(w: Worker, job: Job): void {
    for (const other of w.jobs.values()) other.shared = true;
    job.shared = w.jobs.size > 0;
    job.slot = w.freeSlots.pop();
    w.jobs.set(job.id, job);
    if (job.alone) w.exclusive = true;
    if (this.timeoutMs > 0) {
      job.timer = setTimeout(() => {
        job.timedOut = true;
        w.child.kill('SIGKILL');
      }, this.timeoutMs);
    }
    const msg: DecodeRequest = { id: job.id, file: job.file, opts: job.opts, ...(job.slot !== undefined ? { slot: job.slot } : {}) };
    // A worker that died meanwhile fails the send; its 'close' handler deals with the job.
    w.child.send(msg, (e) => { if (e) w.stderrTail += `\n${e.message}`; });
  }

  /** The pixels a worker wrote to the job's slot file (`length` bytes at offset 0). */
  private readSlot(w: Worker, job: Job, length: number): Uint8Array {
    if (job.slot === undefined || !Number.isSafeInteger(length) || length < 0) throw new Error(`no slot, or a length of ${length}`);
    const fd = w.slotFds[job.slot]!;
    const data = new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length);
    for (let off = 0; off < length;) {
      const got = fs.readSync(fd, data, off, length - off, off);
      if (got === 0) throw new Error(`the slot file ends at byte ${off} of ${length}`);
      off += got;
    }
    if (length > SLOT_KEEP_BYTES) fs.ftruncateSync(fd, 0);
    return data;
  }

  private freeSlot(w: Worker, job: Job): void {
    if (job.slot !== undefined && !w.dead) w.freeSlots.push(job.slot);
    job.slot = undefined;
  }

  /** Hands queued files to workers with room, starting workers as needed. */
  private pump(): void {
    if (this.closed) return;
    const starting = (): number => this.workers.filter((x) => !x.ready).length;
    // Files to retry alone go to an idle worker, one each; one worker beyond `workers` may be started
    // for them, so that a retry does not wait behind the whole queue.
    while (this.aloneQueue.length > 0) {
      const w = this.workers.find((x) => x.ready && x.jobs.size === 0);
      if (w) {
        this.sendTo(w, this.aloneQueue.shift()!);
        continue;
      }
      if (starting() === 0 && this.workers.length < this.workerCount + 1) this.spawnWorker();
      break;
    }
    while (this.queue.length > 0) {
      const w = this.workers.find((x) => x.ready && !x.exclusive && x.jobs.size < this.inFlightPerWorker);
      if (w) {
        this.sendTo(w, this.queue.shift()!);
        continue;
      }
      // Start as many workers as the queue can keep busy (those starting already count).
      while (this.workers.length < this.workerCount && starting() * this.inFlightPerWorker < this.queue.length) {
        this.spawnWorker();
      }
      break;
    }
    this.refLoop();
  }

  /** Keeps the event loop alive only while files are pending. */
  private refLoop(): void {
    const busy = this.pending() > 0;
    for (const w of this.workers) {
      const channel = w.child.channel as { ref?: () => void; unref?: () => void } | null | undefined;
      if (busy) { w.child.ref(); channel?.ref?.(); } else { w.child.unref(); channel?.unref?.(); }
    }
  }
}
