/**
 * An allowlist unpickler for PyTorch state dicts: data interpretation only, nothing is ever executed.
 *
 * It knows the protocol-2 opcodes that `torch.save` writes (RELIABILITY §1.2) and the handful of globals
 * a state dict needs: `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
 * `torch._utils._rebuild_parameter`, `torch.Size`, `torch.device` and the legacy `torch.*Storage` classes.
 * Every other opcode (FRAME, MEMOIZE, STACK_GLOBAL, INST, OBJ, EXT*, ...) and every other global
 * (os.system, builtins.eval, numpy..., ...) is refused with ERR_CHECKPOINT_UNSAFE, before anything is
 * built from it.
 *
 * Structural rules, each checked (PyTorch's CVEs were all missing checks):
 *  - REDUCE / NEWOBJ call only the allowlisted callables, with checked argument types and arity;
 *  - BUILD only on an OrderedDict (a state dict's `_metadata`), with a dict state;
 *  - APPEND(S) only on lists, SETITEM(S) only on dicts and OrderedDicts, with string/number keys;
 *  - BINPERSID ids must be tuples starting with 'storage' (resolved by the caller's `persistentLoad`);
 *  - memo indexes must be defined; memo size, stack size and MARK depth are bounded;
 *  - every length is checked against the bytes left before anything is allocated;
 *  - tensor sizes/strides/offsets are checked against the storage with BigInt arithmetic;
 *  - the result may not contain itself (no cycles) and is at most `maxDepth` deep.
 * All faults are SslInvErrors (never a raw RangeError), naming the file, the record and the byte offset.
 *
 * Result: a plain value tree. Python dicts become `Map`s (`OrderedDict` instances, a Map subclass, for
 * collections.OrderedDict), lists and tuples become arrays (tuples are frozen), ints become numbers (or
 * bigints beyond 2^53), str becomes string, True/False booleans, None null. `_rebuild_tensor_v2`
 * results are tensor descriptors (see `TensorDescriptor`), built by the caller's `makeTensor`.
 *
 * Other pickles (e.g. CIFAR-10's numpy batches, src/io/cifar.ts) pass an `extension`: its globals
 * REPLACE the torch allowlist, REDUCE on them calls the extension (which returns plain values or
 * opaque `PyObject`s), and BUILD is allowed only on those objects, through the extension. With
 * `binaryStrings`, Python 2 `str` (SHORT_BINSTRING / BINSTRING) become bytes (`Uint8Array` views of the
 * buffer, no copy), as `pickle.load(f, encoding='bytes')` gives them; a bytes dict key becomes the
 * string of its latin-1 characters.
 */
import { SslInvError, ErrorCode } from '../errors';

// ---------------------------------------------------------------------------------------------
// Value model
// ---------------------------------------------------------------------------------------------

export type PyKey = string | number;

/** collections.OrderedDict. `attrs` holds what BUILD set on it (a state dict's `_metadata`). */
export class OrderedDict extends Map<PyKey, PyValue> {
  readonly attrs = new Map<string, PyValue>();
}

/** A reference to an allowlisted global, as pushed by GLOBAL (only ever used as data). */
export interface PyGlobal {
  readonly kind: 'global';
  readonly module: string;
  readonly name: string;
}

/** torch dtypes of the storage classes we read. */
export type TorchDType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export const STORAGE_TYPES: Readonly<Record<string, { dtype: TorchDType; itemsize: number }>> = Object.freeze({
  FloatStorage: { dtype: 'float32', itemsize: 4 },
  DoubleStorage: { dtype: 'float64', itemsize: 8 },
  HalfStorage: { dtype: 'float16', itemsize: 2 },
  BFloat16Storage: { dtype: 'bfloat16', itemsize: 2 },
  LongStorage: { dtype: 'int64', itemsize: 8 },
  IntStorage: { dtype: 'int32', itemsize: 4 },
  ShortStorage: { dtype: 'int16', itemsize: 2 },
  CharStorage: { dtype: 'int8', itemsize: 1 },
  ByteStorage: { dtype: 'uint8', itemsize: 1 },
  BoolStorage: { dtype: 'bool', itemsize: 1 },
});

/** A storage, as returned by the caller's `persistentLoad` for a ('storage', ...) persistent id. */
export interface StorageRef {
  readonly kind: 'storage';
  readonly dtype: TorchDType;
  readonly itemsize: number;
  readonly key: string;
  readonly location: string;
  /** Number of elements. */
  readonly numel: number;
}

/** What `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])` describes. */
export interface TensorDescriptor {
  readonly kind: 'tensor';
  readonly dtype: TorchDType;
  readonly shape: number[];
  /** Strides in elements. */
  readonly stride: number[];
  /** Offset into the storage in elements. */
  readonly storageOffset: number;
  readonly storageKey: string;
  readonly storage: StorageRef;
  readonly requiresGrad: boolean;
}

/** An object an `UnpickleExtension` made (e.g. a numpy array); opaque to the unpickler. */
export interface PyObject {
  readonly kind: 'object';
  /** 'module.name' of the global that made it, for messages. */
  readonly type: string;
  /** The extension's own data (mutated by its BUILD). */
  state: unknown;
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | Map<PyKey, PyValue>
  | TensorDescriptor
  | StorageRef
  | PyGlobal
  | PyObject;

/**
 * Globals for a pickle that is not a torch state dict. `globals` replaces the torch allowlist;
 * `reduce` is REDUCE on one of them (NEWOBJ stays refused); `build` is BUILD on a `PyObject` that
 * `reduce` returned (BUILD on anything else stays refused). Both throw to refuse.
 */
export interface UnpickleExtension {
  readonly globals: ReadonlySet<string>;
  reduce(fn: PyGlobal, args: readonly PyValue[], at: number): PyValue;
  build(target: PyObject, state: PyValue, at: number): void;
}

export interface UnpickleLimits {
  /** Largest MARK nesting. Default 10,000. */
  maxMarkDepth?: number;
  /** Largest number of items on the stack and the saved (marked) stacks together. Default 4,000,000. */
  maxStackItems?: number;
  /** Largest number of memo entries. Default 4,000,000. */
  maxMemo?: number;
  /** Deepest nesting of containers in the result. Default 1,000. */
  maxDepth?: number;
}

export interface UnpickleOptions extends UnpickleLimits {
  /** For error messages. */
  file: string;
  /** The record (e.g. `archive/data.pkl`), for error messages. */
  record?: string;
  /** Byte offset in `buf` where the pickle starts (legacy files hold several pickles in a row). */
  start?: number;
  /** Whether bytes may follow STOP (legacy files). Default false. */
  allowTrailing?: boolean;
  /**
   * Resolves a persistent id: a frozen array whose first element is 'storage'. Returns the storage,
   * or throws. Without it, BINPERSID is refused.
   */
  persistentLoad?: (pid: readonly PyValue[], at: number) => StorageRef;
  /** Turns a checked tensor description into the value to put in the tree. Default: the description. */
  makeTensor?: (d: TensorDescriptor) => TensorDescriptor;
  /** Another allowlist (replacing the torch one) with its REDUCE and BUILD handlers. */
  extension?: UnpickleExtension;
  /** Python 2 str (SHORT_BINSTRING, BINSTRING) as bytes, like encoding='bytes'. Default false (UTF-8 text). */
  binaryStrings?: boolean;
}

export interface UnpickleResult {
  value: PyValue;
  /** Offset just past the STOP opcode. */
  end: number;
}

// ---------------------------------------------------------------------------------------------
// Opcodes
// ---------------------------------------------------------------------------------------------

const OPNAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT',
  0x4a: 'BININT', 0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID',
  0x51: 'BINPERSID', 0x52: 'REDUCE', 0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND', 0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT',
  0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET', 0x69: 'INST', 0x6a: 'LONG_BINGET',
  0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT', 0x72: 'LONG_BINPUT',
  0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2',
  0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8',
  0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL',
  0x94: 'MEMOIZE', 0x95: 'FRAME', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

export function opcodeName(op: number): string {
  return OPNAMES[op] ?? 'unknown';
}

const ALLOWED_GLOBALS = new Set<string>([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch.Size',
  'torch.device',
  ...Object.keys(STORAGE_TYPES).map((s) => `torch.${s}`),
]);

/** The storage class a GLOBAL names, if it is one we read. */
export function storageTypeOf(v: PyValue): { name: string; dtype: TorchDType; itemsize: number } | undefined {
  if (!isGlobal(v) || v.module !== 'torch') return undefined;
  const st = STORAGE_TYPES[v.name];
  return st ? { name: v.name, ...st } : undefined;
}

export function isGlobal(v: unknown): v is PyGlobal {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'global' && !Array.isArray(v) && !(v instanceof Map);
}

export function isStorageRef(v: unknown): v is StorageRef {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map) && (v as { kind?: unknown }).kind === 'storage';
}

export function isTensor(v: unknown): v is TensorDescriptor {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map) && (v as { kind?: unknown }).kind === 'tensor';
}

export function isPyObject(v: unknown): v is PyObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map) && (v as { kind?: unknown }).kind === 'object';
}

export function isTuple(v: unknown): v is readonly PyValue[] {
  return Array.isArray(v) && Object.isFrozen(v);
}

export function isList(v: unknown): v is PyValue[] {
  return Array.isArray(v) && !Object.isFrozen(v);
}

/** A short type name for messages. */
export function pyTypeName(v: unknown): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'string') return 'str';
  if (v instanceof Uint8Array) return 'bytes';
  if (isTuple(v)) return 'tuple';
  if (Array.isArray(v)) return 'list';
  if (v instanceof OrderedDict) return 'OrderedDict';
  if (v instanceof Map) return 'dict';
  if (isGlobal(v)) return `${v.module}.${v.name}`;
  if (isStorageRef(v)) return 'storage';
  if (isTensor(v)) return 'tensor';
  if (isPyObject(v)) return v.type;
  return typeof v;
}

const MARK_ERR_TRUNCATED = Symbol('truncated');

/** True when the pickle ran out of bytes (legacy readers then read more of the file and retry). */
export function isTruncationError(e: unknown): boolean {
  return e instanceof SslInvError && (e as unknown as Record<symbol, unknown>)[MARK_ERR_TRUNCATED] === true;
}

const TWO53 = 2n ** 53n;

/** Makes a Python tuple: an array frozen so that APPEND cannot target it. */
function tuple<T extends PyValue>(items: T[]): PyValue[] {
  return Object.freeze(items) as unknown as PyValue[];
}
const utf8 = new TextDecoder('utf-8', { fatal: true });

// ---------------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------------

class Unpickler {
  private pos: number;
  private opStart: number;
  private stack: PyValue[] = [];
  private readonly metastack: PyValue[][] = [];
  private savedItems = 0;
  private readonly memo = new Map<number, PyValue>();
  private readonly maxMarkDepth: number;
  private readonly maxStackItems: number;
  private readonly maxMemo: number;

  constructor(private readonly buf: Uint8Array, private readonly o: UnpickleOptions) {
    this.pos = o.start ?? 0;
    this.opStart = this.pos;
    this.maxMarkDepth = o.maxMarkDepth ?? 10_000;
    this.maxStackItems = o.maxStackItems ?? 4_000_000;
    this.maxMemo = o.maxMemo ?? 4_000_000;
  }

  private err(code: ErrorCode, message: string, at = this.opStart): SslInvError {
    return new SslInvError(code, `${message} at byte ${at}`, { file: this.o.file, ...(this.o.record !== undefined ? { field: this.o.record } : {}) });
  }

  private corrupt(message: string): SslInvError {
    return this.err('ERR_CHECKPOINT_CORRUPT', message);
  }

  private unsafe(message: string): SslInvError {
    return this.err('ERR_CHECKPOINT_UNSAFE', message);
  }

  // ---- reading bytes -------------------------------------------------------------------------

  private need(n: number): void {
    if (n > this.buf.length - this.pos) {
      const e = this.err('ERR_CHECKPOINT_CORRUPT', `pickle truncated: needs ${n} more bytes, ${this.buf.length - this.pos} left`);
      Object.defineProperty(e, MARK_ERR_TRUNCATED, { value: true });
      throw e;
    }
  }

  private u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  private u16(): number {
    this.need(2);
    const v = this.buf[this.pos]! | (this.buf[this.pos + 1]! << 8);
    this.pos += 2;
    return v;
  }

  private u32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    const v = (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16)) + b[p + 3]! * 0x1000000;
    this.pos += 4;
    return v;
  }

  private i32(): number {
    const v = this.u32();
    return v >= 0x80000000 ? v - 0x100000000 : v;
  }

  private bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private text(n: number): string {
    const b = this.bytes(n);
    try {
      return utf8.decode(b);
    } catch {
      throw this.corrupt('string is not valid UTF-8');
    }
  }

  /** A GLOBAL operand: a newline-terminated ASCII identifier path, at most 256 bytes. */
  private line(): string {
    const max = 256;
    const start = this.pos;
    const end = Math.min(this.buf.length, start + max + 1);
    for (let i = start; i < end; i++) {
      if (this.buf[i] === 0x0a) {
        const s = this.buf.subarray(start, i);
        for (const c of s) {
          const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x2e;
          if (!ok) throw this.unsafe('GLOBAL operand is not a dotted identifier');
        }
        this.pos = i + 1;
        return Buffer.from(s.buffer, s.byteOffset, s.length).toString('latin1');
      }
    }
    if (end === this.buf.length && end - start <= max) this.need(end - start + 1);
    throw this.unsafe(`GLOBAL operand longer than ${max} bytes`);
  }

  // ---- the stack -----------------------------------------------------------------------------

  private push(v: PyValue): void {
    if (this.stack.length + this.savedItems >= this.maxStackItems) throw this.corrupt(`pickle stack exceeds ${this.maxStackItems} items`);
    this.stack.push(v);
  }

  private pop(): PyValue {
    if (this.stack.length === 0) throw this.corrupt('pickle stack underflow');
    return this.stack.pop()!;
  }

  private top(): PyValue {
    if (this.stack.length === 0) throw this.corrupt('pickle stack underflow');
    return this.stack[this.stack.length - 1]!;
  }

  private mark(): void {
    if (this.metastack.length >= this.maxMarkDepth) throw this.corrupt(`MARK nesting deeper than ${this.maxMarkDepth}`);
    this.metastack.push(this.stack);
    this.savedItems += this.stack.length;
    this.stack = [];
  }

  private popMark(): PyValue[] {
    const prev = this.metastack.pop();
    if (prev === undefined) throw this.corrupt('no MARK on the stack');
    const items = this.stack;
    this.stack = prev;
    this.savedItems -= prev.length;
    return items;
  }

  // ---- helpers -------------------------------------------------------------------------------

  private key(k: PyValue): PyKey {
    if (typeof k === 'string') return k;
    if (typeof k === 'number') return k;
    if (typeof k === 'boolean') return k ? 1 : 0;
    if (k instanceof Uint8Array && this.o.binaryStrings) return Buffer.from(k.buffer, k.byteOffset, k.length).toString('latin1');
    if (typeof k === 'bigint') {
      if (k > -TWO53 && k < TWO53) return Number(k);
      throw this.err('ERR_CHECKPOINT_UNSUPPORTED', 'dict key is an integer beyond 2^53');
    }
    throw this.err('ERR_CHECKPOINT_UNSUPPORTED', `dict key of type ${pyTypeName(k)} (only str and int keys are read)`);
  }

  private int(v: PyValue, what: string): number {
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    if (typeof v === 'bigint') {
      if (v > -TWO53 && v < TWO53) return Number(v);
      throw this.corrupt(`${what} ${v} is beyond 2^53`);
    }
    throw this.corrupt(`${what} must be an int, not ${pyTypeName(v)}`);
  }

  private intTuple(v: PyValue, what: string): number[] {
    if (!isTuple(v)) throw this.corrupt(`${what} must be a tuple, not ${pyTypeName(v)}`);
    if (v.length > 64) throw this.corrupt(`${what} has ${v.length} dimensions (limit 64)`);
    return v.map((x, i) => {
      const n = this.int(x, `${what}[${i}]`);
      if (n < 0) throw this.corrupt(`${what}[${i}] is negative (${n})`);
      return n;
    });
  }

  // ---- allowlisted callables -----------------------------------------------------------------

  private call(fn: PyValue, args: PyValue, how: 'REDUCE' | 'NEWOBJ'): PyValue {
    if (!isGlobal(fn)) throw this.unsafe(`${how} on a ${pyTypeName(fn)}, which is not an allowlisted callable`);
    if (!isTuple(args)) throw this.unsafe(`${how} arguments must be a tuple, not ${pyTypeName(args)}`);
    const name = `${fn.module}.${fn.name}`;
    if (this.o.extension) {
      if (how === 'NEWOBJ' || !this.o.extension.globals.has(name)) throw this.unsafe(`${how} of ${name} is not allowed`);
      return this.o.extension.reduce(fn, args, this.opStart);
    }
    if (how === 'NEWOBJ' && name !== 'collections.OrderedDict') throw this.unsafe(`NEWOBJ of ${name} is not allowed`);
    switch (name) {
      case 'collections.OrderedDict': {
        const od = new OrderedDict();
        if (args.length === 0) return od;
        // Python 2's OrderedDict.__reduce__: (OrderedDict, ([[k, v], ...],))
        if (args.length === 1 && Array.isArray(args[0]) && how === 'REDUCE') {
          for (const pair of args[0]) {
            if (!Array.isArray(pair) || pair.length !== 2) throw this.corrupt('OrderedDict items must be (key, value) pairs');
            od.set(this.key(pair[0]!), pair[1]!);
          }
          return od;
        }
        throw this.unsafe(`${name} called with ${args.length} arguments`);
      }
      case 'torch._utils._rebuild_tensor_v2':
        return this.rebuildTensor(args);
      case 'torch._utils._rebuild_parameter': {
        if (args.length !== 3) throw this.corrupt(`_rebuild_parameter takes 3 arguments, got ${args.length}`);
        const [data, requiresGrad, hooks] = args;
        if (!isTensor(data)) throw this.corrupt(`_rebuild_parameter data must be a tensor, not ${pyTypeName(data)}`);
        if (typeof requiresGrad !== 'boolean') throw this.corrupt('_rebuild_parameter requires_grad must be a bool');
        if (!(hooks instanceof Map)) throw this.corrupt('_rebuild_parameter backward_hooks must be a dict');
        return data;
      }
      case 'torch.Size': {
        if (args.length !== 1) throw this.corrupt(`torch.Size takes 1 argument, got ${args.length}`);
        return tuple(this.intTuple(args[0]!, 'torch.Size'));
      }
      case 'torch.device': {
        const [type, index] = args;
        if (args.length < 1 || args.length > 2 || typeof type !== 'string' || !/^[a-z]+(:\d+)?$/.test(type)) {
          throw this.corrupt('torch.device takes a device string and an optional index');
        }
        if (args.length === 2) {
          if (index === null) return type;
          return `${type}:${this.int(index!, 'device index')}`;
        }
        return type;
      }
      default:
        throw this.unsafe(`${name} is not callable`);
    }
  }

  private rebuildTensor(args: readonly PyValue[]): TensorDescriptor {
    if (args.length !== 6 && args.length !== 7) throw this.corrupt(`_rebuild_tensor_v2 takes 6 or 7 arguments, got ${args.length}`);
    const [storage, offsetV, sizeV, strideV, requiresGrad, hooks, metadata] = args;
    if (!isStorageRef(storage)) throw this.corrupt(`_rebuild_tensor_v2 storage must be a storage, not ${pyTypeName(storage)}`);
    const storageOffset = this.int(offsetV!, 'storage_offset');
    if (storageOffset < 0) throw this.corrupt(`negative storage_offset ${storageOffset}`);
    const shape = this.intTuple(sizeV!, 'size');
    if (!isTuple(strideV)) throw this.corrupt(`stride must be a tuple, not ${pyTypeName(strideV)}`);
    const stride = strideV.map((x, i) => {
      const n = this.int(x, `stride[${i}]`);
      if (n < 0) throw this.corrupt(`negative stride[${i}] (${n})`);
      return n;
    });
    if (stride.length !== shape.length) throw this.corrupt(`size has ${shape.length} dimensions but stride has ${stride.length}`);
    if (typeof requiresGrad !== 'boolean') throw this.corrupt('requires_grad must be a bool');
    if (!(hooks instanceof Map)) throw this.corrupt('backward_hooks must be a dict');
    if (hooks.size !== 0) throw this.unsafe('tensor has backward hooks');
    if (args.length === 7 && metadata !== null && !(metadata instanceof Map)) throw this.corrupt('tensor metadata must be a dict');

    // Bounds, in BigInt: every element index offset + Σ i_k·stride_k must lie inside the storage.
    let numel = 1n;
    let extent = BigInt(storageOffset);
    for (let k = 0; k < shape.length; k++) {
      numel *= BigInt(shape[k]!);
      extent += (BigInt(shape[k]!) - 1n) * BigInt(stride[k]!);
    }
    if (numel > TWO53) throw this.corrupt(`tensor of size (${shape.join(', ')}) has more than 2^53 elements`);
    if (numel > 0n && extent >= BigInt(storage.numel)) {
      throw this.corrupt(`tensor of size (${shape.join(', ')}), stride (${stride.join(', ')}), offset ${storageOffset} reaches element ${extent}, past its storage '${storage.key}' of ${storage.numel} elements`);
    }
    const d: TensorDescriptor = {
      kind: 'tensor', dtype: storage.dtype, shape, stride, storageOffset, storageKey: storage.key, storage, requiresGrad,
    };
    return this.o.makeTensor ? this.o.makeTensor(d) : d;
  }

  // ---- main loop -----------------------------------------------------------------------------

  run(): UnpickleResult {
    const buf = this.buf;
    let first = true;
    for (;;) {
      this.opStart = this.pos;
      const op = this.u8();
      switch (op) {
        case 0x80: { // PROTO
          if (!first) throw this.corrupt('PROTO after the first opcode');
          const v = this.u8();
          if (v > 5) throw this.err('ERR_CHECKPOINT_UNSUPPORTED', `unsupported pickle protocol ${v}`);
          break;
        }
        case 0x2e: { // STOP
          if (this.metastack.length !== 0) throw this.corrupt('STOP inside a MARK');
          if (this.stack.length !== 1) throw this.corrupt(`STOP with ${this.stack.length} items on the stack`);
          const value = this.stack[0]!;
          if (!this.o.allowTrailing && this.pos !== buf.length) throw this.corrupt(`${buf.length - this.pos} bytes after STOP`);
          return { value, end: this.pos };
        }
        case 0x28: this.mark(); break; // MARK
        case 0x63: { // GLOBAL
          const module = this.line();
          const name = this.line();
          const full = `${module}.${name}`;
          if (this.o.extension && !this.o.extension.globals.has(full)) {
            throw this.unsafe(`pickle references the global ${full}, which is not allowed`);
          }
          if (!this.o.extension && !ALLOWED_GLOBALS.has(full)) {
            if (module === 'torch' && name.endsWith('Storage')) throw this.err('ERR_CHECKPOINT_UNSUPPORTED', `unsupported storage type ${full}`);
            throw this.unsafe(`pickle references the global ${full}, which is not allowed`);
          }
          this.push(Object.freeze({ kind: 'global', module, name }) as PyGlobal);
          break;
        }
        case 0x52: { // REDUCE
          const args = this.pop();
          const fn = this.pop();
          this.push(this.call(fn, args, 'REDUCE'));
          break;
        }
        case 0x81: { // NEWOBJ
          const args = this.pop();
          const cls = this.pop();
          this.push(this.call(cls, args, 'NEWOBJ'));
          break;
        }
        case 0x62: { // BUILD
          const state = this.pop();
          const target = this.top();
          if (this.o.extension && isPyObject(target)) {
            this.o.extension.build(target, state, this.opStart);
            break;
          }
          if (!(target instanceof OrderedDict)) throw this.unsafe(`BUILD on a ${pyTypeName(target)} is not allowed (only OrderedDict)`);
          if (!(state instanceof Map) || state instanceof OrderedDict) throw this.unsafe(`BUILD state must be a dict, not ${pyTypeName(state)}`);
          for (const [k, v] of state) {
            if (typeof k !== 'string') throw this.unsafe('BUILD state keys must be strings');
            target.attrs.set(k, v);
          }
          break;
        }
        case 0x61: { // APPEND
          const v = this.pop();
          const list = this.top();
          if (!isList(list)) throw this.unsafe(`APPEND to a ${pyTypeName(list)} (only lists)`);
          list.push(v);
          break;
        }
        case 0x65: { // APPENDS
          const items = this.popMark();
          const list = this.top();
          if (!isList(list)) throw this.unsafe(`APPENDS to a ${pyTypeName(list)} (only lists)`);
          for (const v of items) list.push(v);
          break;
        }
        case 0x73: { // SETITEM
          const v = this.pop();
          const k = this.pop();
          const d = this.top();
          if (!(d instanceof Map)) throw this.unsafe(`SETITEM on a ${pyTypeName(d)} (only dicts)`);
          d.set(this.key(k), v);
          break;
        }
        case 0x75: { // SETITEMS
          const items = this.popMark();
          const d = this.top();
          if (!(d instanceof Map)) throw this.unsafe(`SETITEMS on a ${pyTypeName(d)} (only dicts)`);
          if (items.length % 2 !== 0) throw this.corrupt('SETITEMS with an odd number of items');
          for (let i = 0; i < items.length; i += 2) d.set(this.key(items[i]!), items[i + 1]!);
          break;
        }
        case 0x74: this.push(tuple(this.popMark())); break; // TUPLE
        case 0x85: this.push(tuple([this.pop()])); break; // TUPLE1
        case 0x86: { const b = this.pop(); const a = this.pop(); this.push(tuple([a, b])); break; } // TUPLE2
        case 0x87: { const c = this.pop(); const b = this.pop(); const a = this.pop(); this.push(tuple([a, b, c])); break; } // TUPLE3
        case 0x29: this.push(tuple([])); break; // EMPTY_TUPLE
        case 0x5d: this.push([]); break; // EMPTY_LIST
        case 0x7d: this.push(new Map<PyKey, PyValue>()); break; // EMPTY_DICT
        case 0x4e: this.push(null); break; // NONE
        case 0x88: this.push(true); break; // NEWTRUE
        case 0x89: this.push(false); break; // NEWFALSE
        case 0x4a: this.push(this.i32()); break; // BININT
        case 0x4b: this.push(this.u8()); break; // BININT1
        case 0x4d: this.push(this.u16()); break; // BININT2
        case 0x8a: { // LONG1
          const n = this.u8();
          const b = this.bytes(n);
          let v = 0n;
          for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
          if (n > 0 && (b[n - 1]! & 0x80) !== 0) v -= 1n << BigInt(8 * n);
          this.push(v > -TWO53 && v < TWO53 ? Number(v) : v);
          break;
        }
        case 0x47: { // BINFLOAT (big-endian double)
          const b = this.bytes(8);
          this.push(new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, false));
          break;
        }
        case 0x58: this.push(this.text(this.u32())); break; // BINUNICODE
        case 0x55: { // SHORT_BINSTRING (Python 2 str, read as UTF-8 like torch.load, or as bytes)
          const n = this.u8();
          this.push(this.o.binaryStrings ? this.bytes(n) : this.text(n));
          break;
        }
        case 0x54: { // BINSTRING
          const n = this.i32();
          if (n < 0) throw this.corrupt('BINSTRING with a negative length');
          this.push(this.o.binaryStrings ? this.bytes(n) : this.text(n));
          break;
        }
        case 0x51: { // BINPERSID
          const pid = this.pop();
          if (!isTuple(pid) || pid[0] !== 'storage') {
            throw this.unsafe(`persistent id must be a tuple starting with 'storage', not ${isTuple(pid) ? `a tuple starting with ${pyTypeName(pid[0])} ${typeof pid[0] === 'string' ? `'${pid[0]}'` : ''}`.trimEnd() : `a ${pyTypeName(pid)}`}`);
          }
          if (!this.o.persistentLoad) throw this.unsafe('persistent ids are not allowed in this pickle');
          this.push(this.o.persistentLoad(pid, this.opStart));
          break;
        }
        case 0x68: this.get(this.u8()); break; // BINGET
        case 0x6a: this.get(this.u32()); break; // LONG_BINGET
        case 0x71: this.put(this.u8()); break; // BINPUT
        case 0x72: this.put(this.u32()); break; // LONG_BINPUT
        default:
          throw this.unsafe(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} (${opcodeName(op)})`);
      }
      first = false;
    }
  }

  private get(i: number): void {
    if (!this.memo.has(i)) throw this.corrupt(`memo index ${i} is not defined`);
    this.push(this.memo.get(i)!);
  }

  private put(i: number): void {
    if (!this.memo.has(i) && this.memo.size >= this.maxMemo) throw this.corrupt(`memo exceeds ${this.maxMemo} entries`);
    this.memo.set(i, this.top());
  }
}

/** Checks that the result holds no cycle and is at most `maxDepth` containers deep (iteratively). */
function checkTree(root: PyValue, o: UnpickleOptions): void {
  const maxDepth = o.maxDepth ?? 1000;
  const done = new Set<object>();
  const onPath = new Set<object>();
  const fail = (code: ErrorCode, m: string): never => {
    throw new SslInvError(code, m, { file: o.file, ...(o.record !== undefined ? { field: o.record } : {}) });
  };
  const children = (v: object): PyValue[] => {
    if (Array.isArray(v)) return v;
    if (v instanceof OrderedDict) return [...v.values(), ...v.attrs.values()];
    if (v instanceof Map) return [...v.values()];
    return [];
  };
  if (root === null || typeof root !== 'object') return;
  const stack: { node: object; kids: PyValue[]; i: number }[] = [{ node: root, kids: children(root), i: 0 }];
  onPath.add(root);
  while (stack.length > 0) {
    const fr = stack[stack.length - 1]!;
    if (fr.i >= fr.kids.length) {
      stack.pop();
      onPath.delete(fr.node);
      done.add(fr.node);
      continue;
    }
    const c = fr.kids[fr.i++];
    if (c === null || typeof c !== 'object' || done.has(c)) continue;
    if (onPath.has(c)) fail('ERR_CHECKPOINT_UNSAFE', 'pickle builds a container that contains itself');
    if (!(Array.isArray(c) || c instanceof Map)) {
      done.add(c);
      continue;
    }
    if (stack.length >= maxDepth) fail('ERR_CHECKPOINT_UNSUPPORTED', `containers nested deeper than ${maxDepth}`);
    onPath.add(c);
    stack.push({ node: c, kids: children(c), i: 0 });
  }
}

/** Unpickles one pickle from `buf` (from `opts.start`), allowlisted as described above. */
export function unpickle(buf: Uint8Array, opts: UnpickleOptions): UnpickleResult {
  let res: UnpickleResult;
  try {
    res = new Unpickler(buf, opts).run();
  } catch (e) {
    if (e instanceof SslInvError) throw e;
    // Anything else is a bug or an exhausted engine limit; still a typed error.
    throw new SslInvError('ERR_CHECKPOINT_CORRUPT', `cannot unpickle: ${(e as Error)?.message ?? String(e)}`, { file: opts.file, ...(opts.record !== undefined ? { field: opts.record } : {}), cause: e });
  }
  checkTree(res.value, opts);
  return res;
}
