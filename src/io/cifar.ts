/**
 * CIFAR-10 "python version" batches (`cifar-10-batches-py/data_batch_1..5`, `test_batch`,
 * `batches.meta`), read without running anything from them.
 *
 * The files are protocol-2 pickles written by Python 2's cPickle: a dict with str keys
 * (SHORT_BINSTRING) `data`, `labels`, `batch_label`, `filenames`. `data` is a numpy array pickled as
 *
 *     numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), 'b')
 *       BUILD (1, (10000, 3072), numpy.dtype('u1', 0, 1) BUILD (3, '|', None, None, None, -1, -1, 0),
 *              False, <30,720,000 bytes as a BINSTRING>)
 *
 * and `labels` a list of 10000 ints. They are read by src/io/pickle.ts with its own allowlist for this
 * format (the torch globals are not allowed here): `numpy.core.multiarray._reconstruct` (and numpy
 * 2's `numpy._core.multiarray._reconstruct`), `numpy.ndarray`, `numpy.dtype`; Python 2 str become
 * bytes as `pickle.load(f, encoding='bytes')` gives them. Any other global (os.system, ...) is
 * ERR_CHECKPOINT_UNSAFE naming it, as for checkpoints.
 *
 * Checked, each an ERR_DATASET_LAYOUT naming the file and the field: the top level is a dict with
 * `data` and `labels`; `data` is a C-ordered uint8 array of shape (10000, 3072) (fewer rows only when
 * the caller says so, for test fixtures) whose byte string has exactly that length; `labels` is a list
 * of as many ints in 0..9. Each row is one 32x32 image stored as its red, green and blue planes
 * (CHW), as torchvision reshapes it to (-1, 3, 32, 32) before transposing to HWC.
 */
import { promises as fsp } from 'node:fs';
import { SslInvError } from '../errors';
import {
  isGlobal, isPyObject, isList, isTuple, pyTypeName, unpickle, PyGlobal, PyObject, PyValue, UnpickleExtension,
} from './pickle';

export const CIFAR_ROWS = 10000;
export const CIFAR_ROW_BYTES = 3072;
export const CIFAR_NUM_CLASSES = 10;

export interface CifarBatch {
  file: string;
  /** Number of images. */
  rows: number;
  /** rows x 3072 bytes, each row the R, G and B planes of a 32x32 image (a view of the file's bytes). */
  data: Uint8Array;
  labels: number[];
  /** `batch_label`, when present (latin-1 text). */
  batchLabel?: string;
}

export interface CifarBatchOptions {
  /**
   * Number of rows `data` must have. Default 10000, as every real batch; smaller values exist for
   * test fixtures only.
   */
  expectedRows?: number;
}

export interface CifarMeta {
  file: string;
  labelNames: string[];
}

const NUMPY_GLOBALS = new Set([
  'numpy.core.multiarray._reconstruct',
  'numpy._core.multiarray._reconstruct',
  'numpy.ndarray',
  'numpy.dtype',
]);

interface NdState { built: boolean; shape?: number[]; dtype?: DtypeState; fortran?: boolean; data?: Uint8Array }
interface DtypeState { name: string; order?: string; itemsize: number }

const DTYPE_SIZES: Record<string, number> = {
  b1: 1, i1: 1, u1: 1, i2: 2, u2: 2, i4: 4, u4: 4, i8: 8, u8: 8, f2: 2, f4: 4, f8: 8,
};

function latin1(v: Uint8Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.length).toString('latin1');
}

/** A str or (Python 2) bytes value as text, else undefined. */
function asText(v: PyValue): string | undefined {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return latin1(v);
  return undefined;
}

function numpyExtension(file: string): UnpickleExtension {
  const corrupt = (m: string, at: number): SslInvError =>
    new SslInvError('ERR_CHECKPOINT_CORRUPT', `${m} at byte ${at}`, { file });
  return {
    globals: NUMPY_GLOBALS,
    reduce(fn: PyGlobal, args: readonly PyValue[], at: number): PyValue {
      const name = `${fn.module}.${fn.name}`;
      if (name.endsWith('multiarray._reconstruct')) {
        const [cls, shape, typecode] = args;
        if (args.length !== 3 || !isGlobal(cls) || `${cls.module}.${cls.name}` !== 'numpy.ndarray' ||
          !isTuple(shape) || shape.length !== 1 || shape[0] !== 0 || asText(typecode ?? null) !== 'b') {
          throw corrupt('_reconstruct must be called as _reconstruct(numpy.ndarray, (0,), b\'b\')', at);
        }
        const o: PyObject = { kind: 'object', type: 'numpy.ndarray', state: { built: false } as NdState };
        return o;
      }
      if (name === 'numpy.dtype') {
        const [spec, align, copy] = args;
        const s = asText(spec ?? null);
        if (args.length !== 3 || s === undefined || typeof align !== 'number' || typeof copy !== 'number') {
          throw corrupt('numpy.dtype must be called as dtype(<str>, 0, 1)', at);
        }
        const size = DTYPE_SIZES[s];
        if (size === undefined) throw new SslInvError('ERR_CHECKPOINT_UNSUPPORTED', `numpy dtype '${s}' is not read here at byte ${at}`, { file });
        const o: PyObject = { kind: 'object', type: 'numpy.dtype', state: { name: s, itemsize: size } as DtypeState };
        return o;
      }
      throw new SslInvError('ERR_CHECKPOINT_UNSAFE', `${name} is not callable at byte ${at}`, { file });
    },
    build(target: PyObject, state: PyValue, at: number): void {
      if (target.type === 'numpy.dtype') {
        const st = target.state as DtypeState;
        if (!isTuple(state) || state.length < 8 || typeof state[0] !== 'number') throw corrupt('numpy dtype state must be a tuple (version, byteorder, ...)', at);
        const order = asText(state[1]!);
        if (order === undefined || !['|', '<', '>', '='].includes(order)) throw corrupt('numpy dtype byte order must be one of | < > =', at);
        if (state[2] !== null || state[3] !== null) throw new SslInvError('ERR_CHECKPOINT_UNSUPPORTED', `structured numpy dtype at byte ${at}`, { file });
        st.order = order;
        return;
      }
      if (target.type === 'numpy.ndarray') {
        const st = target.state as NdState;
        if (st.built) throw corrupt('numpy array built twice', at);
        if (!isTuple(state) || state.length !== 5) throw corrupt('numpy array state must be (version, shape, dtype, is_fortran, data)', at);
        const [, shapeV, dtypeV, fortranV, dataV] = state;
        if (!isTuple(shapeV) || shapeV.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)) {
          throw corrupt('numpy array shape must be a tuple of non-negative ints', at);
        }
        if (!isPyObject(dtypeV) || dtypeV.type !== 'numpy.dtype') throw corrupt(`numpy array dtype must be a numpy.dtype, not ${pyTypeName(dtypeV)}`, at);
        if (typeof fortranV !== 'boolean') throw corrupt('numpy array is_fortran must be a bool', at);
        if (!(dataV instanceof Uint8Array)) {
          throw new SslInvError('ERR_CHECKPOINT_UNSUPPORTED', `numpy array data is a ${pyTypeName(dataV ?? null)}, not a byte string (an object array?) at byte ${at}`, { file });
        }
        st.built = true;
        st.shape = (shapeV as number[]).slice();
        st.dtype = dtypeV.state as DtypeState;
        st.fortran = fortranV;
        st.data = dataV;
        return;
      }
      throw new SslInvError('ERR_CHECKPOINT_UNSAFE', `BUILD on a ${target.type} is not allowed at byte ${at}`, { file });
    },
  };
}

function unpickleCifar(buf: Uint8Array, file: string): PyValue {
  return unpickle(buf, { file, extension: numpyExtension(file), binaryStrings: true }).value;
}

function fieldError(file: string, field: string, message: string): SslInvError {
  return new SslInvError('ERR_DATASET_LAYOUT', message, { file, field });
}

function topDict(v: PyValue, file: string, what: string): Map<string | number, PyValue> {
  if (!(v instanceof Map)) throw fieldError(file, '<top level>', `is a ${pyTypeName(v)}; expected a dict (${what})`);
  return v;
}

/** Parses one data batch held in memory (see the module comment for what is checked). */
export function parseCifarBatch(buf: Uint8Array, file: string, opts: CifarBatchOptions = {}): CifarBatch {
  const rows = opts.expectedRows ?? CIFAR_ROWS;
  const d = topDict(unpickleCifar(buf, file), file, "a CIFAR-10 batch with 'data' and 'labels'");
  const data = d.get('data');
  if (data === undefined) throw fieldError(file, 'data', `missing; expected a (${rows}, ${CIFAR_ROW_BYTES}) uint8 array (keys present: ${[...d.keys()].join(', ')})`);
  if (!isPyObject(data) || data.type !== 'numpy.ndarray') throw fieldError(file, 'data', `is a ${pyTypeName(data)}; expected a (${rows}, ${CIFAR_ROW_BYTES}) uint8 numpy array`);
  const st = data.state as NdState;
  if (!st.built) throw fieldError(file, 'data', 'numpy array without its state (no BUILD)');
  const shape = st.shape!, dtype = st.dtype!;
  const shapeStr = `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;
  if (dtype.name !== 'u1') throw fieldError(file, 'data', `dtype is '${dtype.order ?? ''}${dtype.name}'; expected uint8 ('|u1') of shape (${rows}, ${CIFAR_ROW_BYTES})`);
  if (shape.length !== 2 || shape[0] !== rows || shape[1] !== CIFAR_ROW_BYTES) {
    throw fieldError(file, 'data', `shape is ${shapeStr}; expected (${rows}, ${CIFAR_ROW_BYTES})`);
  }
  if (st.fortran) throw fieldError(file, 'data', 'array is Fortran-ordered; expected C order');
  if (st.data!.length !== rows * CIFAR_ROW_BYTES) {
    throw fieldError(file, 'data', `holds ${st.data!.length} bytes; shape ${shapeStr} of uint8 needs ${rows * CIFAR_ROW_BYTES}`);
  }
  const labelsV = d.get('labels');
  if (labelsV === undefined) throw fieldError(file, 'labels', `missing; expected a list of ${rows} ints in 0..9`);
  if (!isList(labelsV)) throw fieldError(file, 'labels', `is a ${pyTypeName(labelsV)}; expected a list of ${rows} ints in 0..9`);
  if (labelsV.length !== rows) throw fieldError(file, 'labels', `has ${labelsV.length} entries; expected ${rows}, one per row of data`);
  const labels: number[] = new Array(rows);
  for (let i = 0; i < rows; i++) {
    const l = labelsV[i];
    if (typeof l !== 'number' || !Number.isInteger(l) || l < 0 || l >= CIFAR_NUM_CLASSES) {
      throw fieldError(file, `labels[${i}]`, `is ${typeof l === 'number' ? l : pyTypeName(l ?? null)}; expected an int in 0..9`);
    }
    labels[i] = l;
  }
  const bl = d.get('batch_label');
  const batchLabel = bl !== undefined ? asText(bl) : undefined;
  return { file, rows, data: st.data!, labels, ...(batchLabel !== undefined ? { batchLabel } : {}) };
}

/** Parses `batches.meta`: `label_names`, a list of 10 class names. */
export function parseCifarMeta(buf: Uint8Array, file: string): CifarMeta {
  const d = topDict(unpickleCifar(buf, file), file, "CIFAR-10's batches.meta with 'label_names'");
  const names = d.get('label_names');
  if (names === undefined) throw fieldError(file, 'label_names', 'missing; expected a list of 10 class names');
  if (!isList(names) || names.length !== CIFAR_NUM_CLASSES) {
    throw fieldError(file, 'label_names', `is a ${pyTypeName(names)}${isList(names) ? ` of ${names.length}` : ''}; expected a list of 10 class names`);
  }
  const labelNames = names.map((n, i) => {
    const s = asText(n);
    if (s === undefined) throw fieldError(file, `label_names[${i}]`, `is a ${pyTypeName(n)}; expected a str`);
    return s;
  });
  return { file, labelNames };
}

async function readAll(file: string): Promise<Buffer> {
  try {
    return await fsp.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SslInvError('ERR_FILE_NOT_FOUND', 'no such file', { file, cause: e });
    throw new SslInvError('ERR_FILE_READ', `cannot read: ${(e as Error).message}`, { file, cause: e });
  }
}

export async function readCifarBatch(file: string, opts: CifarBatchOptions = {}): Promise<CifarBatch> {
  return parseCifarBatch(await readAll(file), file, opts);
}

export async function readCifarMeta(file: string): Promise<CifarMeta> {
  return parseCifarMeta(await readAll(file), file);
}

/** Image `i` of a batch as HWC uint8 (32x32x3), as torchvision's `.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)`. */
export function cifarImageHWC(data: Uint8Array, i: number): Uint8Array {
  const out = new Uint8Array(CIFAR_ROW_BYTES);
  const base = i * CIFAR_ROW_BYTES;
  for (let p = 0; p < 1024; p++) {
    out[3 * p] = data[base + p]!;
    out[3 * p + 1] = data[base + 1024 + p]!;
    out[3 * p + 2] = data[base + 2048 + p]!;
  }
  return out;
}
