/**
 * MoCo pre-training checkpoints in main_moco.py's format, written and read back (to resume).
 *
 * Written (torch.save's zip, atomically): {'epoch': epochs done, 'arch', 'state_dict', 'optimizer'}
 *   state_dict: the MoCo model as DistributedDataParallel names it, in nn.Module order:
 *               module.queue [dim, K], module.queue_ptr [1] int64, module.encoder_q.* (backbone with
 *               num_batches_tracked, then fc.*), module.encoder_k.*
 *   optimizer:  torch.optim.SGD's state_dict (1.13): {'state': {i: {'momentum_buffer'}} for encoder_q's
 *               parameters (index i in model.parameters() order, encoder_k's parameters following
 *               and never holding state), 'param_groups': [{lr, momentum, dampening, weight_decay,
 *               nesterov, maximize, foreach, differentiable, params: [0 .. 2P-1]}]}
 * so PyTorch, main_moco.py --resume and every evaluator here load it, plus one key of ours,
 *   ssl_inv_run: {'format': 1, 'seed', 'model', 'batch_size', 'bn_splits', 'image_size', 'images',
 *                 'files_sha256'}: the settings a run's batches and views depend on (RunSettings),
 *               which a resume checks (main_moco.py and PyTorch ignore a key they do not read).
 * Nothing NaN or infinite is written (ERR_NON_FINITE naming the tensor: a diverged run keeps its
 * previous checkpoint) or read back.
 *
 * Read: our checkpoints and the original's (module. prefix optional; the optimizer's state optional,
 * e.g. for a checkpoint stripped of it), checked key by key and shape by shape: a resumed run must
 * be the run it continues, so nothing is silently left at a fresh value.
 */
import { SslInvError } from '../errors';
import { CheckpointTensor, loadCheckpoint } from '../io/torch-checkpoint';
import { PyValue, TensorDescriptor, isTensor, pyTypeName } from '../io/pickle';
import { PyDict, PyFloat, SaveValue, TorchTensor, torchSave } from '../io/torch-save';
import { Arch, allConvBns, expectedBackboneKeys, parseArch, resnetSpec } from '../nn/resnet-spec';
import { SGD } from '../optim/sgd';
import { moveTo, tensor } from '../tensor';
import { checkFinite } from '../io/finite';
import { headParameterNames, headShapes } from './linear-head';
import { MocoConfig, MocoInit, MocoV2 } from './moco';

/**
 * The settings of a pre-training run that its batches, views and key orders depend on, besides what
 * the state dict shows (arch, dim, K, the head): a run resumed with other values would not be the run
 * that wrote the checkpoint (pretrain.ts refuses it unless told to go on).
 */
export interface RunSettings {
  seed: number;
  /** The augmentation set (main_moco.py's --model). */
  model: string;
  batchSize: number;
  bnSplits: number;
  imageSize: number;
  /** Images in the training folder, and the sha256 of their paths (relative, in listing order, one per line). */
  images: number;
  filesSha256: string;
}

const RUN_KEY = 'ssl_inv_run';
/** Each setting's key in the checkpoint's ssl_inv_run dict. */
export const RUN_SETTING_KEYS: Readonly<Record<keyof RunSettings, string>> = {
  seed: 'seed', model: 'model', batchSize: 'batch_size', bnSplits: 'bn_splits', imageSize: 'image_size', images: 'images',
  filesSha256: 'files_sha256',
};
const RUN_FIELDS: [keyof RunSettings, string, 'int' | 'str'][] = (Object.keys(RUN_SETTING_KEYS) as (keyof RunSettings)[])
  .map((k) => [k, RUN_SETTING_KEYS[k], k === 'model' || k === 'filesSha256' ? 'str' : 'int']);

const NON_FINITE_SAVE = 'no checkpoint is written with NaN or infinite values (the training diverged: lower the learning rate; the previous checkpoint is kept)';
const NON_FINITE_LOAD = 'the checkpoint holds NaN or infinite values (written by a run that diverged): resume from an earlier one';

/** The checkpoint file main_moco.py writes after an epoch: `{model}[_w3]_{epoch:04d}.pth.tar`. */
export function checkpointName(model: string, arch: Arch, epoch: number): string {
  // main_moco.py formats `args.model + '_w3' if 'w3' in args.arch else ''`, which Python reads as
  // `(args.model + '_w3') if ... else ''`: every non-w3 checkpoint is named `_0000.pth.tar`, and
  // runs of different models overwrite each other. We keep the model name (ORIGINAL-BEHAVIOUR.md's
  // documented pattern), so checkpoints of different augmentation sets can share a folder.
  return `${model}${arch.endsWith('w3') ? '_w3' : ''}_${String(epoch).padStart(4, '0')}.pth.tar`;
}

/**
 * The value torch.save writes for a checkpoint after `epochsDone` epochs (with `run`, its settings
 * under ssl_inv_run). ERR_NON_FINITE, naming the tensor, if any value is NaN or infinite.
 */
export function mocoCheckpointValue(moco: MocoV2, sgd: SGD, epochsDone: number, run?: RunSettings): SaveValue {
  return checkpointValue(moco, sgd, epochsDone, run);
}

/** mocoCheckpointValue; its errors name `file` when given. */
function checkpointValue(moco: MocoV2, sgd: SGD, epochsDone: number, run: RunSettings | undefined, file?: string): SaveValue {
  const at = file !== undefined ? { file } : {};
  const names = moco.parameterNames();
  const state = new Map<string | number, SaveValue>();
  const buffers = sgd.momentumBuffers();
  names.forEach((name, i) => {
    const b = buffers.get(name);
    if (!b) return;
    const values = b.toFloat32Array();
    checkFinite(values, { ...at, field: `optimizer.state[${i}].momentum_buffer (${name})`, what: NON_FINITE_SAVE });
    state.set(i, new PyDict(new Map([['momentum_buffer', new TorchTensor('float32', [...b.shape], values)]])));
  });
  const o = sgd.options;
  const group = new PyDict(new Map<string | number, SaveValue>([
    // main_moco.py's lr, momentum and weight decay are floats (argparse type=float, and the
    // schedule's products); dampening is SGD's default, the int 0.
    ['lr', new PyFloat(o.lr)], ['momentum', new PyFloat(o.momentum)], ['dampening', o.dampening], ['weight_decay', new PyFloat(o.weightDecay)],
    ['nesterov', o.nesterov], ['maximize', false], ['foreach', null], ['differentiable', false],
    ['params', Array.from({ length: 2 * names.length }, (_, i) => i)],
  ]));
  const sd = new Map<string | number, SaveValue>();
  for (const [k, v] of moco.stateDict()) {
    if (v.data instanceof Float32Array) checkFinite(v.data, { ...at, field: k, what: NON_FINITE_SAVE });
    sd.set(k, v);
  }
  const entries = new Map<string | number, SaveValue>([
    ['epoch', epochsDone],
    ['arch', moco.config.arch],
    ['state_dict', sd],
    ['optimizer', new PyDict(new Map<string | number, SaveValue>([['state', new PyDict(state)], ['param_groups', [group]]]))],
  ]);
  if (run) entries.set(RUN_KEY, new PyDict(new Map<string | number, SaveValue>([['format', 1], ...RUN_FIELDS.map(([k, key]) => [key, run[k]] as [string, SaveValue])])));
  return new PyDict(entries);
}

/** Writes the checkpoint atomically (see mocoCheckpointValue); nothing is written when it throws. */
export async function saveMocoCheckpoint(file: string, moco: MocoV2, sgd: SGD, epochsDone: number, run?: RunSettings): Promise<void> {
  await torchSave(file, checkpointValue(moco, sgd, epochsDone, run, file));
}

/** What a MoCo checkpoint holds, ready to rebuild the model and the optimiser. */
export interface LoadedMocoCheckpoint {
  file: string;
  /** Epochs done (main_moco.py's 'epoch': the next epoch to run). */
  epoch: number;
  arch: Arch;
  dim: number;
  K: number;
  mlp: boolean;
  init: MocoInit;
  /** Momentum buffers by encoder_q parameter name (no prefix); empty when the checkpoint has none. */
  momentum: Map<string, { shape: number[]; values: Float32Array }>;
  /** The run's settings (ssl_inv_run); absent in main_moco.py's checkpoints. */
  run?: RunSettings;
}

type Dict = Map<string | number, PyValue>;

function bad(file: string, message: string, field?: string): never {
  throw new SslInvError('ERR_CHECKPOINT_KEYS', message, field !== undefined ? { file, field } : { file });
}

/** The values of a tensor of a loadCheckpoint() tree (whose tensors are all CheckpointTensors). */
function readValues(v: TensorDescriptor): Promise<ArrayLike<number | bigint>> {
  return (v as CheckpointTensor).read();
}

async function floats(file: string, key: string, v: PyValue | undefined, shape: readonly number[]): Promise<Float32Array> {
  if (v === undefined) bad(file, 'missing', key);
  if (!isTensor(v)) bad(file, `a ${pyTypeName(v)}, not a tensor`, key);
  if (v.shape.length !== shape.length || v.shape.some((d, i) => d !== shape[i])) {
    throw new SslInvError('ERR_SHAPE_MISMATCH', `shape [${v.shape.join(', ')}], expected [${shape.join(', ')}]`, { file, field: key });
  }
  const data = await readValues(v);
  let values: Float32Array;
  if (data instanceof Float32Array) values = data;
  else if (data instanceof Float64Array) values = Float32Array.from(data);
  else throw new SslInvError('ERR_DTYPE_MISMATCH', 'expected a floating-point tensor', { file, field: key });
  checkFinite(values, { file, field: key, what: NON_FINITE_LOAD });
  return values;
}

/** ssl_inv_run of a checkpoint, checked field by field; undefined when it has none. */
function readRunSettings(file: string, v: PyValue | undefined): RunSettings | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof Map)) bad(file, `a ${pyTypeName(v)}, not a dict`, RUN_KEY);
  if (v.get('format') !== 1) bad(file, `format ${String(v.get('format'))}: this version reads format 1`, `${RUN_KEY}.format`);
  const out: Partial<Record<keyof RunSettings, number | string>> = {};
  for (const [k, key, type] of RUN_FIELDS) {
    const x = v.get(key);
    const ok = type === 'int' ? typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 : typeof x === 'string';
    if (!ok) bad(file, `expected ${type === 'int' ? 'an integer >= 0' : 'a string'}, found ${x === undefined ? 'nothing' : pyTypeName(x)}`, `${RUN_KEY}.${key}`);
    out[k] = x as number | string;
  }
  return out as unknown as RunSettings;
}

/** Reads a MoCo checkpoint (ours or main_moco.py's) for resuming. */
export async function loadMocoCheckpoint(file: string): Promise<LoadedMocoCheckpoint> {
  const ckpt = await loadCheckpoint(file);
  const root = ckpt.root;
  if (!(root instanceof Map)) bad(file, `the checkpoint holds a ${pyTypeName(root)}, not main_moco.py's dict`);
  const epoch = root.get('epoch');
  if (typeof epoch !== 'number' || !Number.isInteger(epoch) || epoch < 0) bad(file, 'missing or not an integer >= 0', 'epoch');
  const archValue = root.get('arch');
  if (typeof archValue !== 'string') bad(file, 'missing (main_moco.py checkpoints carry it)', 'arch');
  const arch = parseArch(archValue, { file, field: 'arch' });
  const sdValue = root.get('state_dict');
  if (!(sdValue instanceof Map)) bad(file, 'missing or not a dict', 'state_dict');
  // Strip DistributedDataParallel's module. (main_moco.py's checkpoints always have it).
  const sd: Dict = new Map();
  for (const [k, v] of sdValue) if (typeof k === 'string') sd.set(k.startsWith('module.') ? k.slice(7) : k, v);
  const queue = sd.get('queue');
  if (!isTensor(queue) || queue.shape.length !== 2) bad(file, 'missing or not a [dim, K] tensor: not a MoCo checkpoint', 'module.queue');
  const [dim, K] = queue.shape as [number, number];
  const mlp = sd.has('encoder_q.fc.0.weight');
  const spec = resnetSpec(arch);
  const expected = new Map([...expectedBackboneKeys(spec)].filter(([k]) => !k.endsWith('num_batches_tracked')));
  for (const [k, s] of headShapes(mlp, spec.featureDim, dim)) expected.set(k, s);
  const values = new Map<string, Float32Array>();
  for (const enc of ['encoder_q', 'encoder_k']) {
    for (const [k, shape] of expected) values.set(`${enc}.${k}`, await floats(file, `module.${enc}.${k}`, sd.get(`${enc}.${k}`), shape));
  }
  const queueValues = await floats(file, 'module.queue', queue, [dim, K]);
  const ptrValue = sd.get('queue_ptr');
  let queuePtr = 0;
  if (ptrValue !== undefined) {
    if (!isTensor(ptrValue)) bad(file, 'not a tensor', 'module.queue_ptr');
    const p = await readValues(ptrValue);
    queuePtr = Number(p[0]);
  }
  // The key encoder must be the checkpoint's own (it lags encoder_q by the momentum), not a copy.
  const encoderKParams = new Map<string, Float32Array>();
  for (const k of expected.keys()) encoderKParams.set(k, values.get(`encoder_k.${k}`)!);
  // num_batches_tracked: optional (PyTorch's load_state_dict accepts its absence too).
  const tracked = new Map<string, bigint>();
  for (const enc of ['q', 'k'] as const) {
    for (const cb of allConvBns(spec)) {
      const v = sd.get(`encoder_${enc}.${cb.bn}.num_batches_tracked`);
      if (!isTensor(v)) continue;
      const d = await readValues(v);
      if (d.length === 1) tracked.set(`${enc}:${cb.bn}`, BigInt(d[0]!));
    }
  }
  const init: MocoInit = {
    encoderQ: (key) => values.get(`encoder_q.${key}`) ?? bad(file, 'missing', `module.encoder_q.${key}`),
    encoderK: (key) => encoderKParams.get(key) ?? bad(file, 'missing', `module.encoder_k.${key}`),
    batchesTracked: (enc, bn) => tracked.get(`${enc}:${bn}`) ?? 0n,
    queue: queueValues,
    queuePtr,
  };
  const momentum = await readMomentum(file, root.get('optimizer'), [...backboneNames(arch), ...headParameterNames(mlp)], expected);
  const run = readRunSettings(file, root.get(RUN_KEY));
  return { file, epoch, arch, dim, K, mlp, init, momentum, ...(run ? { run } : {}) };
}

function backboneNames(arch: Arch): string[] {
  return [...expectedBackboneKeys(resnetSpec(arch)).keys()].filter((k) => !/running_|num_batches/.test(k));
}

async function readMomentum(file: string, opt: PyValue | undefined, names: string[], shapes: Map<string, number[]>):
  Promise<Map<string, { shape: number[]; values: Float32Array }>> {
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  if (opt === undefined || opt === null) return out;
  if (!(opt instanceof Map)) bad(file, `a ${pyTypeName(opt)}, not SGD's state_dict`, 'optimizer');
  const state = opt.get('state');
  if (!(state instanceof Map)) bad(file, "no 'state' dict", 'optimizer');
  for (const [i, entry] of state) {
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0) bad(file, `a key ${String(i)} that is not a parameter index`, 'optimizer.state');
    if (i >= names.length) bad(file, `only encoder_q's ${names.length} parameters are trained, so only they can have momentum`, `optimizer.state[${i}]`);
    if (!(entry instanceof Map)) bad(file, 'not a dict', `optimizer.state[${i}]`);
    const name = names[i]!;
    const shape = shapes.get(name)!;
    out.set(name, { shape, values: await floats(file, `optimizer.state[${i}].momentum_buffer (${name})`, entry.get('momentum_buffer'), shape) });
  }
  return out;
}

/** Builds the model and loads the optimiser's momentum from a checkpoint read by loadMocoCheckpoint. */
export async function restoreMoco(c: LoadedMocoCheckpoint, config: Omit<MocoConfig, 'arch' | 'dim' | 'K' | 'mlp'>, sgd: SGD): Promise<MocoV2> {
  const moco = await MocoV2.create({ ...config, arch: c.arch, dim: c.dim, K: c.K, mlp: c.mlp }, c.init);
  try {
    for (const [name, m] of c.momentum) {
      // The buffer goes where the parameters are: the optimiser steps them there.
      sgd.setMomentumBuffer(name, moveTo(tensor(m.values, m.shape), moco.device));
    }
  } catch (e) {
    moco.dispose();
    throw e;
  }
  return moco;
}
