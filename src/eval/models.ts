/**
 * Models by name, as the original's model_utils resolves them, and their combinations.
 *
 *   NAME          -> {ckptDir}/NAME.pth.tar: a MoCo checkpoint (features from encoder_q, fc removed)
 *                    or a torchvision-style state dict; without it, the one of NAME.pth, NAME.pt,
 *                    NAME.torch (VISSL) or NAME.safetensors that is there (two are refused);
 *   random        -> {ckptDir}/random.pth.tar; created on first use as a freshly initialised
 *                    torchvision ResNet-50 (nn/torchvision-init.ts, numpy seed 0) and saved with
 *                    torch.save's format, then reused. (The original needs the file to exist before
 *                    its first run and initialises it unseeded.)
 *   supervised    -> {ckptDir}/supervised.pth.tar: torchvision's ImageNet ResNet-50 state dict, which
 *                    the user provides (we download nothing).
 *   a+b+c         -> the models' features combined like the original's ModelCombiner: `cat`
 *                    concatenates in the order of the names, `add` sums them (float32, left to
 *                    right), `mean` divides that sum by the number of models.
 * Every part carries its checkpoint's SHA-256, which keys caches and is recorded in results.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SslInvError } from '../errors';
import { sha256File } from '../io/hash';
import { torchSave } from '../io/torch-save';
import { Arch } from '../nn/resnet-spec';
import { torchvisionInitStateDict } from '../nn/torchvision-init';
import { Tensor } from '../tensor';
import { loadFeatureExtractor, LoadedModel } from './model-loader';
import type { PendingFeatures } from './features';
import type { ActivationStorage } from '../nn/resnet';
import type { Precision } from '../ops';

export type FuseMode = 'cat' | 'add' | 'mean';

export interface ModelPart {
  name: string;
  file: string;
  sha256: string;
  model: LoadedModel;
}

export interface NamedModelOptions {
  ckptDir: string;
  fuseMode?: FuseMode;
  /** Notices for the user (e.g. "created models/random.pth.tar"); default: none. */
  onNotice?: (message: string) => void;
  /** Where the networks run: 'cpu' (default) or 'cuda:N'. */
  device?: string;
  /** Convolution arithmetic (tf32 and bf16 on CUDA only); default fp32. */
  precision?: Precision;
  /** Activation storage between layers: float32 (default), or bfloat16 with precision bf16. */
  activations?: ActivationStorage;
}

export const RANDOM_MODEL_SEED = 0;

export function splitModelName(name: string): string[] {
  const parts = name.split('+');
  if (parts.some((p) => p === '' || !/^[A-Za-z0-9_.-]+$/.test(p))) {
    throw new SslInvError('ERR_USAGE', `--model '${name}': expected names like default or default+ventral+dorsal`);
  }
  return parts;
}

/** Creates {ckptDir}/random.pth.tar when it does not exist yet. */
export async function ensureRandomCheckpoint(ckptDir: string, onNotice?: (m: string) => void, arch: Arch = 'resnet50'): Promise<string> {
  const file = path.join(ckptDir, 'random.pth.tar');
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(ckptDir, { recursive: true });
  const sd = torchvisionInitStateDict(arch, RANDOM_MODEL_SEED);
  await torchSave(file, sd);
  onNotice?.(`created ${file}: a freshly initialised torchvision ${arch} (numpy seed ${RANDOM_MODEL_SEED})`);
  return file;
}

/**
 * The file names a model NAME may have in --ckpt-dir: the original's `NAME.pth.tar` first, then the
 * names other tools give weights (torch.save's .pth / .pt, VISSL's .torch, safetensors). The format
 * is read from the contents, whatever the name.
 */
export const MODEL_EXTENSIONS = ['.pth.tar', '.pth', '.pt', '.torch', '.safetensors'] as const;

async function resolveFile(name: string, o: NamedModelOptions): Promise<string> {
  if (name === 'random') return ensureRandomCheckpoint(o.ckptDir, o.onNotice);
  const original = path.join(o.ckptDir, `${name}.pth.tar`);
  if (fs.existsSync(original)) return original;
  const found = MODEL_EXTENSIONS.slice(1).map((ext) => path.join(o.ckptDir, `${name}${ext}`)).filter((f) => fs.existsSync(f));
  if (found.length > 1) {
    // Two files that could be the model: which one a result came from must not be a guess.
    throw new SslInvError('ERR_USAGE', `model '${name}' is ambiguous: ${found.map((f) => path.basename(f)).join(' and ')} are both in ${o.ckptDir}; ` +
      'keep one, or name it NAME.pth.tar', { file: found[0]! });
  }
  if (found.length === 1) return found[0]!;
  const hint = name === 'supervised'
    ? 'save torchvision\'s ImageNet ResNet-50 weights there (torch.save(torchvision.models.resnet50(pretrained=True).state_dict(), path))'
    : `put the checkpoint there (e.g. the final ${name}_00199.pth.tar of pre-training; ${MODEL_EXTENSIONS.slice(1).join(', ')} are also looked for) or pass --ckpt-dir`;
  throw new SslInvError('ERR_FILE_NOT_FOUND', `model '${name}' not found: ${hint}`, { file: original });
}

export class NamedModel {
  private disposed = false;

  constructor(readonly name: string, readonly parts: ModelPart[], readonly fuseMode: FuseMode) {}

  /** Which checkpoint files made this model, as every result file records them. */
  get provenance(): { name: string; file: string; sha256: string; arch: string }[] {
    return this.parts.map((p) => ({ name: p.name, file: p.file, sha256: p.sha256, arch: p.model.arch }));
  }

  /** Where the networks run (every part is loaded on the same device). */
  get device(): string {
    return this.parts[0]!.model.net.device;
  }

  get featureDim(): number {
    const dims = this.parts.map((p) => p.model.net.featureDim);
    return this.fuseMode === 'cat' ? dims.reduce((a, b) => a + b, 0) : dims[0]!;
  }

  /** Fused features [N, featureDim] of images x [N, 3, H, W], as a host array. */
  features(x: Tensor): Float32Array {
    return this.startFeatures(x).collect();
  }

  /** Every part's forward pass started (queued on a device); collect() reads and fuses them. */
  startFeatures(x: Tensor): PendingFeatures {
    if (this.disposed) throw new SslInvError('ERR_TENSOR_DISPOSED', 'this model was disposed');
    const n = x.shape[0]!;
    const started: PendingFeatures[] = [];
    try {
      for (const p of this.parts) started.push(p.model.net.startFeatures(x));
    } catch (e) {
      for (const s of started) s.dispose();
      throw e;
    }
    return {
      collect: () => {
        try {
          return this.fuse(started.map((s) => s.collect()), n);
        } finally {
          for (const s of started) s.dispose();
        }
      },
      dispose: () => { for (const s of started) s.dispose(); },
    };
  }

  /** The parts' features [n, d_k] fused as the original's ModelCombiner fuses them. */
  private fuse(each: Float32Array[], n: number): Float32Array {
    if (each.length === 1) return each[0]!;
    const d = this.featureDim;
    const out = new Float32Array(n * d);
    if (this.fuseMode === 'cat') {
      let off = 0;
      this.parts.forEach((p, k) => {
        const dk = p.model.net.featureDim;
        for (let r = 0; r < n; r++) out.set(each[k]!.subarray(r * dk, (r + 1) * dk), r * d + off);
        off += dk;
      });
      return out;
    }
    // Python's sum(features): 0 + f1 + f2 + ..., each addition in float32; mean divides by the count.
    out.set(each[0]!);
    for (let k = 1; k < each.length; k++) {
      const f = each[k]!;
      for (let i = 0; i < out.length; i++) out[i] = Math.fround(out[i]! + f[i]!);
    }
    if (this.fuseMode === 'mean') {
      const c = Math.fround(each.length);
      for (let i = 0; i < out.length; i++) out[i] = Math.fround(out[i]! / c);
    }
    return out;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.parts) p.model.net.dispose();
  }

  /** For `using` declarations: the same as dispose(). */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Loads `name` (possibly `a+b+c`) from the checkpoint folder. */
export async function loadNamedModel(name: string, o: NamedModelOptions): Promise<NamedModel> {
  const names = splitModelName(name);
  const fuseMode = o.fuseMode ?? 'cat';
  const parts: ModelPart[] = [];
  try {
    for (const n of names) {
      const file = await resolveFile(n, o);
      const sha256 = await sha256File(file);
      const model = await loadFeatureExtractor(file, {
        ...(o.device ? { device: o.device } : {}), ...(o.precision ? { precision: o.precision } : {}), ...(o.activations ? { activations: o.activations } : {}),
      });
      parts.push({ name: n, file, sha256, model });
    }
  } catch (e) {
    for (const p of parts) p.model.net.dispose();
    throw e;
  }
  if (fuseMode !== 'cat') {
    const dims = new Set(parts.map((p) => p.model.net.featureDim));
    if (dims.size > 1) {
      for (const p of parts) p.model.net.dispose();
      throw new SslInvError('ERR_USAGE', `--fuse-mode ${fuseMode} needs models of one feature size, got ${[...dims].join(' and ')}`);
    }
  }
  return new NamedModel(name, parts, fuseMode);
}
