/**
 * What a checkpoint file is, for `ssl-inv info FILE`: its container, what the evaluators would take
 * from it (the ResNet trunk, its architecture and how it was found), the MoCo parts main_moco.py
 * saves (queue, head, optimiser state, epoch) and the run settings pre-training records
 * (ssl_inv_run), and whether every trunk value is finite. Read through the same safe loaders as
 * every command (nothing in the file is executed); a file they refuse is refused here with the same
 * coded error.
 */
import { promises as fsp } from 'node:fs';
import { chooseArch } from '../eval/model-loader';
import { expectedBackboneKeys, isOptionalKey, resnetSpec } from '../nn/resnet-spec';
import { firstNonFinite } from './finite';
import { sha256File } from './hash';
import { PyValue, isTensor } from './pickle';
import { backboneOf, checkStateDict } from './state-dict';
import { CheckpointTensor, loadCheckpoint } from './torch-checkpoint';

export interface CheckpointInfo {
  file: string;
  bytes: number;
  sha256: string;
  /** 'zip' (torch.save since 1.6, with its format version and byte order) or 'legacy' (the older stream). */
  container: string;
  /** 'moco' (main_moco.py's encoder_q) or 'state_dict' (a torchvision-style trunk). */
  kind: 'moco' | 'state_dict';
  arch: string;
  /** Where the architecture came from: the checkpoint's `arch`, the tensor shapes, or the default. */
  archSource: string;
  /** Prefix stripped from the keys (e.g. `module.encoder_q.`), if any. */
  prefix?: string;
  epoch?: number;
  /** Tensors and values of the trunk the evaluators load (fc.* and num_batches_tracked left out of the count). */
  trunkTensors: number;
  trunkParameters: number;
  /** 'ok', or why the evaluators would refuse the trunk (missing keys, shapes). */
  loads: string;
  /** 'yes', or the first tensor holding NaN or an infinity. */
  finite: string;
  /** main_moco.py's MoCo parts, when the checkpoint is one. */
  moco?: { dim: number; K: number; queuePtr?: number; head: 'mlp' | 'linear'; momentumBuffers: number };
  /** The settings pre-training recorded (ssl_inv_run), when present. */
  run?: Record<string, number | string>;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A dict of the checkpoint (string keys), or undefined. */
function asDict(v: PyValue | undefined): Map<string | number, PyValue> | undefined {
  return v instanceof Map ? v : undefined;
}

export async function describeCheckpoint(file: string): Promise<CheckpointInfo> {
  // The loader's coded errors first (a missing, unreadable or refused file); then the file is there.
  const ckpt = await loadCheckpoint(file);
  const bytes = (await fsp.stat(file)).size;
  const container = ckpt.format === 'zip' ? `zip (torch.save format version ${ckpt.version}, ${ckpt.byteorder} endian)`
    : ckpt.format === 'safetensors' ? 'safetensors' : 'legacy stream (torch < 1.6)';
  const backbone = backboneOf(ckpt);
  const { arch, source } = chooseArch(backbone, file);
  let loads = 'ok';
  try {
    checkStateDict(backbone.tensors, expectedBackboneKeys(resnetSpec(arch)), { file, optional: isOptionalKey });
  } catch (e) {
    loads = (e as Error).message;
  }
  let trunkTensors = 0, trunkParameters = 0, finite = 'yes';
  for (const [key, t] of backbone.tensors) {
    if (isOptionalKey(key)) continue;
    trunkTensors++;
    trunkParameters += numel(t.shape);
    if (finite !== 'yes') continue;
    const values = await t.read();
    if (values instanceof Float32Array || values instanceof Float64Array) {
      const i = firstNonFinite(values);
      if (i >= 0) finite = `no: ${key} holds ${values[i]} at index ${i}`;
    }
  }
  const info: CheckpointInfo = {
    file, bytes, sha256: await sha256File(file), container, kind: backbone.source, arch, archSource: source,
    ...(backbone.droppedPrefix ? { prefix: backbone.droppedPrefix } : {}),
    ...(backbone.epoch !== undefined ? { epoch: backbone.epoch } : {}),
    trunkTensors, trunkParameters, loads, finite,
  };
  const root = asDict(ckpt.root);
  const sd = asDict(root?.get('state_dict'));
  if (backbone.source === 'moco' && sd) {
    const get = (k: string) => sd.get(`module.${k}`) ?? sd.get(k);
    const queue = get('queue');
    const ptr = get('queue_ptr');
    const optimizer = asDict(root?.get('optimizer'));
    const state = asDict(optimizer?.get('state'));
    if (isTensor(queue) && queue.shape.length === 2) {
      let queuePtr: number | undefined;
      if (isTensor(ptr) && numel(ptr.shape) === 1) queuePtr = Number((await (ptr as CheckpointTensor).read())[0]);
      info.moco = {
        dim: queue.shape[0]!, K: queue.shape[1]!, ...(queuePtr !== undefined ? { queuePtr } : {}),
        head: get('encoder_q.fc.0.weight') !== undefined ? 'mlp' : 'linear', momentumBuffers: state?.size ?? 0,
      };
    }
  }
  const run = asDict(root?.get('ssl_inv_run'));
  if (run) {
    info.run = {};
    for (const [k, v] of run) if (typeof k === 'string' && (typeof v === 'number' || typeof v === 'string')) info.run[k] = v;
  }
  return info;
}
