/**
 * Model weights in a safetensors file (timm, Hugging Face and others publish them so) as a Checkpoint
 * like the torch.save ones: a flat state dict whose tensors read as C-ordered typed arrays, F16 and
 * BF16 widened to float32 exactly (as torch's `.float()`). Nothing in the format can run code; the
 * structure is checked by parseSafetensors (ERR_CHECKPOINT_CORRUPT naming the tensor), and a tensor
 * over maxTensorBytes once widened is ERR_CHECKPOINT_UNSUPPORTED, as in the other formats.
 */
import { SslInvError } from '../errors';
import type { DType, TypedArray } from '../tensor';
import { OrderedDict, StorageRef, TorchDType } from './pickle';
import { readSafetensors, SafetensorsDType, SafetensorsTensor } from './safetensors';
import type { Checkpoint, CheckpointTensor } from './torch-checkpoint';

const TORCH_DTYPE: Record<SafetensorsDType, TorchDType> = {
  F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32', U8: 'uint8',
};
const OUT_DTYPE: Record<SafetensorsDType, DType> = {
  F64: 'float64', F32: 'float32', F16: 'float32', BF16: 'float32', I64: 'int64', I32: 'int32', U8: 'uint8',
};

class SafetensorsEntry implements CheckpointTensor {
  readonly kind = 'tensor' as const;
  readonly dtype: TorchDType;
  readonly shape: number[];
  readonly stride: number[];
  readonly storageOffset = 0;
  readonly storageKey: string;
  readonly storage: StorageRef;
  readonly requiresGrad = false;
  readonly outDtype: DType;

  constructor(name: string, private readonly t: SafetensorsTensor) {
    this.dtype = TORCH_DTYPE[t.dtype];
    this.shape = t.shape;
    this.stride = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    this.storageKey = name;
    this.outDtype = OUT_DTYPE[t.dtype];
    this.storage = { kind: 'storage', dtype: this.dtype, itemsize: t.dtype === 'F16' || t.dtype === 'BF16' ? 2 : t.data.BYTES_PER_ELEMENT,
      key: name, location: 'cpu', numel: t.data.length };
  }

  /** A fresh copy each time, as the other formats' reads are: callers may keep or change it. */
  async read(): Promise<TypedArray> {
    return this.t.data.slice() as TypedArray;
  }
}

export async function loadSafetensorsCheckpoint(file: string, maxTensorBytes: number): Promise<Checkpoint> {
  const f = await readSafetensors(file);
  const root = new OrderedDict();
  for (const [name, t] of f.tensors) {
    if (t.data.byteLength > maxTensorBytes) {
      throw new SslInvError('ERR_CHECKPOINT_UNSUPPORTED',
        `tensor of size (${t.shape.join(', ')}) would take ${t.data.byteLength} bytes, over the ${maxTensorBytes}-byte limit`, { file, field: name });
    }
    root.set(name, new SafetensorsEntry(name, t));
  }
  return { file, format: 'safetensors', root, byteorder: 'little', metadata: f.metadata };
}
