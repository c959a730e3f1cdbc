/**
 * Recognising the backbone weights users bring, and checking them against a model's expected keys.
 *
 * Accepted (RELIABILITY §5, MoCo's main_moco.py and the original model_utils):
 *  - MoCo checkpoints `{epoch, arch, state_dict, optimizer}` whose state_dict keys are
 *    `module.encoder_q.*`, `module.encoder_k.*`, `module.queue`, `module.queue_ptr`: the features come
 *    from encoder_q with `fc.*` (the MLP head) removed — strip `module.`, take `encoder_q.`, drop `fc.`;
 *  - a bare state dict with torchvision names (`conv1.weight`, `layer1.0.bn1.running_mean`, ...);
 *  - a dict with a `state_dict` key that is not MoCo;
 *  - keys prefixed `module.` (DataParallel) or `backbone.` (stripped, and recorded in `droppedPrefix`).
 * In every case `fc.*` is removed: the result is the torchvision ResNet trunk.
 */
import type { TypedArray } from '../tensor';
import { SslInvError } from '../errors';
import { Checkpoint, loadCheckpoint, CheckpointOptions } from './torch-checkpoint';
import { PyValue, isTensor, pyTypeName } from './pickle';

export interface LazyTensor {
  dtype: string;
  shape: number[];
  read(): Promise<TypedArray>;
}

export interface Backbone {
  source: 'moco' | 'state_dict';
  arch?: string;
  epoch?: number;
  /** torchvision names: conv1.weight, bn1.running_mean, layer1.0.conv1.weight, ...; fc.* removed. */
  tensors: Map<string, LazyTensor>;
  /** What was stripped from the keys (e.g. `module.encoder_q.`, `module.`, `backbone.`). */
  droppedPrefix?: string;
}

function asTensorMap(d: Map<string | number, PyValue>, file: string, where: string): Map<string, LazyTensor> {
  const out = new Map<string, LazyTensor>();
  for (const [k, v] of d) {
    if (typeof k !== 'string') throw new SslInvError('ERR_CHECKPOINT_KEYS', `${where} has a non-string key ${String(k)}`, { file, field: where });
    if (!isTensor(v)) {
      throw new SslInvError('ERR_CHECKPOINT_KEYS', `${where} entry '${k}' is a ${pyTypeName(v)}, not a tensor`, { file, field: k });
    }
    out.set(k, v as unknown as LazyTensor);
  }
  return out;
}

function stripAll(m: Map<string, LazyTensor>, prefix: string): Map<string, LazyTensor> {
  const out = new Map<string, LazyTensor>();
  for (const [k, v] of m) out.set(k.slice(prefix.length), v);
  return out;
}

function allStartWith(m: Map<string, unknown>, prefix: string): boolean {
  if (m.size === 0) return false;
  for (const k of m.keys()) if (!k.startsWith(prefix)) return false;
  return true;
}

function dropFc(m: Map<string, LazyTensor>): Map<string, LazyTensor> {
  const out = new Map<string, LazyTensor>();
  for (const [k, v] of m) if (!k.startsWith('fc.')) out.set(k, v);
  return out;
}

function isStringKeyed(v: PyValue): v is Map<string | number, PyValue> {
  return v instanceof Map;
}

/** Loads a checkpoint and returns the ResNet trunk's tensors under torchvision names (lazy). */
export async function loadBackbone(file: string, opts: CheckpointOptions = {}): Promise<Backbone> {
  return backboneOf(await loadCheckpoint(file, opts));
}

/**
 * A VISSL checkpoint's trunk: `classy_state_dict.base_model.model.trunk` (what VISSL trains and its
 * model zoo ships; `.torch` files), or `model_state_dict` (what its converters write), as VISSL's
 * convert_vissl_to_torchvision.py reads them. undefined when the checkpoint is not laid out so; a
 * `classy_state_dict` missing a level is ERR_CHECKPOINT_KEYS naming it.
 */
function visslTrunk(root: Map<string | number, PyValue>, file: string): { dict: Map<string | number, PyValue>; where: string } | undefined {
  const classy = root.get('classy_state_dict');
  if (classy !== undefined) {
    let node: PyValue = classy;
    let where = 'classy_state_dict';
    for (const level of ['base_model', 'model', 'trunk']) {
      if (!isStringKeyed(node)) throw new SslInvError('ERR_CHECKPOINT_KEYS', `VISSL checkpoint: '${where}' is a ${pyTypeName(node)}, not a dict`, { file, field: where });
      const next = node.get(level);
      if (next === undefined) {
        const keys = [...node.keys()].slice(0, 20).map(String).join(', ');
        throw new SslInvError('ERR_CHECKPOINT_KEYS', `VISSL checkpoint: '${where}' has no '${level}' (keys: ${keys})`, { file, field: `${where}.${level}` });
      }
      node = next;
      where = `${where}.${level}`;
    }
    if (!isStringKeyed(node)) throw new SslInvError('ERR_CHECKPOINT_KEYS', `VISSL checkpoint: '${where}' is a ${pyTypeName(node)}, not a dict`, { file, field: where });
    return { dict: node, where };
  }
  const model = root.get('model_state_dict');
  if (model !== undefined && root.get('state_dict') === undefined && isStringKeyed(model)) return { dict: model, where: 'model_state_dict' };
  return undefined;
}

/** The ResNet trunk of a checkpoint already loaded (see loadBackbone). */
export function backboneOf(ckpt: Checkpoint): Backbone {
  const file = ckpt.file;
  const root = ckpt.root;
  if (!isStringKeyed(root)) {
    throw new SslInvError('ERR_CHECKPOINT_KEYS', `checkpoint holds a ${pyTypeName(root)}, not a dict of weights`, { file });
  }
  const arch = typeof root.get('arch') === 'string' ? (root.get('arch') as string) : undefined;
  const ep = root.get('epoch');
  const epoch = typeof ep === 'number' && Number.isInteger(ep) ? ep : undefined;
  const extra = { ...(arch !== undefined ? { arch } : {}), ...(epoch !== undefined ? { epoch } : {}) };

  let sdValue: Map<string | number, PyValue>;
  let where: string;
  const inner = root.get('state_dict');
  const vissl = visslTrunk(root, file);
  if (vissl) {
    // VISSL: the trunk's keys carry `_feature_blocks.` (stripped below); its heads are not features.
    ({ dict: sdValue, where } = vissl);
  } else if (inner !== undefined) {
    if (!isStringKeyed(inner)) throw new SslInvError('ERR_CHECKPOINT_KEYS', `'state_dict' is a ${pyTypeName(inner)}, not a dict`, { file, field: 'state_dict' });
    sdValue = inner;
    where = 'state_dict';
  } else {
    const hasTensor = [...root.values()].some((v) => isTensor(v));
    if (!hasTensor) {
      const keys = [...root.keys()].slice(0, 20).map(String).join(', ');
      throw new SslInvError('ERR_CHECKPOINT_KEYS', `no state dict found: the checkpoint is a dict with keys [${keys}] and no 'state_dict' and no tensors`, { file });
    }
    sdValue = root;
    where = 'checkpoint';
  }

  // MoCo: keys under (module.)encoder_q.
  const moco = [...sdValue.keys()].some((k) => typeof k === 'string' && /^(module\.)?encoder_q\./.test(k));
  if (moco) {
    const q = new Map<string | number, PyValue>();
    let prefix = '';
    for (const [k, v] of sdValue) {
      if (typeof k !== 'string') continue;
      const m = /^((?:module\.)?encoder_q\.)(.*)$/.exec(k);
      if (!m) continue; // encoder_k, queue, queue_ptr: not part of the features
      prefix = m[1]!;
      q.set(m[2]!, v);
    }
    return { source: 'moco', ...extra, tensors: dropFc(asTensorMap(q, file, where)), droppedPrefix: prefix };
  }

  let tensors = asTensorMap(sdValue, file, where);
  const dropped: string[] = [];
  if (allStartWith(tensors, '_feature_blocks.')) {
    tensors = stripAll(tensors, '_feature_blocks.');
    dropped.push('_feature_blocks.');
  }
  if (allStartWith(tensors, 'module.')) {
    tensors = stripAll(tensors, 'module.');
    dropped.push('module.');
  }
  if (allStartWith(tensors, 'backbone.')) {
    tensors = stripAll(tensors, 'backbone.');
    dropped.push('backbone.');
  } else if ([...tensors.keys()].some((k) => k.startsWith('backbone.'))) {
    // A backbone plus heads (e.g. `backbone.*` and `head.*`): keep the backbone.
    const only = new Map<string, LazyTensor>();
    for (const [k, v] of tensors) if (k.startsWith('backbone.')) only.set(k.slice('backbone.'.length), v);
    tensors = only;
    dropped.push('backbone.');
  }
  tensors = dropFc(tensors);
  return { source: 'state_dict', ...extra, tensors, ...(dropped.length ? { droppedPrefix: dropped.join('') } : {}) };
}

const CAP = 20;

function capped(items: string[]): string {
  if (items.length <= CAP) return items.join(', ');
  return `${items.slice(0, CAP).join(', ')}, ... and ${items.length - CAP} more`;
}

/**
 * Checks tensors against the expected keys and shapes. Throws ERR_CHECKPOINT_KEYS listing missing keys,
 * unexpected keys and shape mismatches (each list capped at 20 in the message, with a count).
 * Keys for which `optional(key)` is true (e.g. `num_batches_tracked`) may be missing or extra.
 */
export function checkStateDict(
  tensors: Map<string, LazyTensor>,
  expected: Map<string, number[]>,
  opts: { file: string; optional?: (key: string) => boolean },
): void {
  const optional = opts.optional ?? (() => false);
  const missing: string[] = [];
  const unexpected: string[] = [];
  const mismatched: string[] = [];
  for (const [k, shape] of expected) {
    const t = tensors.get(k);
    if (!t) {
      if (!optional(k)) missing.push(k);
      continue;
    }
    const same = t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
    if (!same) mismatched.push(`${k}: expected [${shape.join(', ')}], found [${t.shape.join(', ')}]`);
  }
  for (const k of tensors.keys()) if (!expected.has(k) && !optional(k)) unexpected.push(k);
  if (missing.length === 0 && unexpected.length === 0 && mismatched.length === 0) return;
  const parts: string[] = [];
  if (missing.length) parts.push(`${missing.length} missing key${missing.length > 1 ? 's' : ''}: ${capped(missing)}`);
  if (unexpected.length) parts.push(`${unexpected.length} unexpected key${unexpected.length > 1 ? 's' : ''}: ${capped(unexpected)}`);
  if (mismatched.length) parts.push(`${mismatched.length} shape mismatch${mismatched.length > 1 ? 'es' : ''}: ${capped(mismatched)}`);
  throw new SslInvError('ERR_CHECKPOINT_KEYS', `state dict does not match the model: ${parts.join('; ')}`, { file: opts.file });
}
