/**
 * From a checkpoint file to a ready feature extractor.
 *
 * The architecture is, in order of precedence: the caller's `arch`, the checkpoint's `arch` field
 * (MoCo checkpoints carry it), the one the tensor shapes identify (a Bottleneck trunk has
 * layer1.0.conv3; a widened one a 192-channel stem), and finally resnet50, as the original assumes
 * for plain state dicts. The state dict must then match that architecture exactly (every key, every
 * shape; num_batches_tracked optional), unlike the original's load_state_dict(strict=False), which
 * silently leaves mismatched layers at their random initialisation.
 */
import { SslInvError } from '../errors';
import { Backbone, checkStateDict, loadBackbone } from '../io/state-dict';
import { checkFinite } from '../io/finite';
import { ResNetFeatures, ResNetLoadOptions } from '../nn/resnet';
import { Arch, expectedBackboneKeys, inferArch, isOptionalKey, parseArch, resnetSpec } from '../nn/resnet-spec';

export type ArchSource = 'option' | 'checkpoint' | 'inferred' | 'default';

export interface LoadedModel {
  net: ResNetFeatures;
  arch: Arch;
  archSource: ArchSource;
  backbone: Backbone;
  file: string;
}

export function chooseArch(backbone: Backbone, file: string, requested?: string): { arch: Arch; source: ArchSource } {
  if (requested !== undefined) return { arch: parseArch(requested, { field: '--arch' }), source: 'option' };
  if (backbone.arch !== undefined) return { arch: parseArch(backbone.arch, { file, field: 'arch' }), source: 'checkpoint' };
  const shapes = new Map<string, readonly number[]>();
  for (const [k, v] of backbone.tensors) shapes.set(k, v.shape);
  const inferred = inferArch(shapes);
  if (inferred) return { arch: inferred, source: 'inferred' };
  return { arch: 'resnet50', source: 'default' };
}

/** The network options of `opts` (device, precision, activations, convAlgo), without `arch`. */
function loadOptions(opts: { arch?: string } & ResNetLoadOptions): ResNetLoadOptions {
  const { arch: _arch, ...rest } = opts;
  return rest;
}

/** Loads a MoCo checkpoint or a torchvision-style state dict as a BN-folded feature extractor. */
export async function loadFeatureExtractor(file: string, opts: { arch?: string } & ResNetLoadOptions = {}): Promise<LoadedModel> {
  const backbone = await loadBackbone(file);
  const { arch, source } = chooseArch(backbone, file, opts.arch);
  checkStateDict(backbone.tensors, expectedBackboneKeys(resnetSpec(arch)), { file, optional: isOptionalKey });
  const net = await ResNetFeatures.load(arch, async (key) => {
    const t = backbone.tensors.get(key);
    if (!t) throw new SslInvError('ERR_CHECKPOINT_KEYS', `missing ${key}`, { file, field: key });
    const data = await t.read();
    let values: Float32Array;
    if (data instanceof Float32Array) values = data;
    // float64 weights are cast as PyTorch's load_state_dict casts into a float32 model.
    else if (data instanceof Float64Array) values = Float32Array.from(data);
    else throw new SslInvError('ERR_DTYPE_MISMATCH', `expected a floating-point tensor, found ${t.dtype}`, { file, field: key });
    checkFinite(values, { file, field: key, what: 'the checkpoint\'s weights are not usable (a diverged training run?); every feature would be NaN' });
    return values;
  }, loadOptions(opts));
  return { net, arch, archSource: source, backbone, file };
}
