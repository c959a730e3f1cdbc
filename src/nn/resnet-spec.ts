/**
 * ResNet architectures as data: torchvision's exact structure and parameter names.
 *
 * resnet18 / resnet50 are torchvision's (v1.5: in a Bottleneck the stride sits on the 3x3 conv2);
 * resnet18w3 / resnet50w3 are the original study's widen=3 variants: every width, the stem
 * included, times 3 (conv1 has 192 output channels, layer widths 192/384/768/1536 planes).
 * Feature dimensions after global average pooling: 512, 1536, 2048, 6144.
 *
 * A spec lists every convolution with the batch norm that follows it, in execution order, so the
 * same description drives state-dict checking, BN folding for inference and (later) training.
 */
import { SslInvError } from '../errors';

export const ARCHS = ['resnet18', 'resnet18w3', 'resnet50', 'resnet50w3'] as const;
export type Arch = (typeof ARCHS)[number];

export function isArch(s: string): s is Arch {
  return (ARCHS as readonly string[]).includes(s);
}

export interface ConvBnSpec {
  /** Parameter prefix of the conv, e.g. "layer1.0.conv1"; its weight is `${conv}.weight`. */
  conv: string;
  /** Parameter prefix of the batch norm that follows, e.g. "layer1.0.bn1". */
  bn: string;
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  padding: number;
}

export interface BlockSpec {
  /** "layer{1-4}.{index}" */
  name: string;
  /** Main path convs in order; the last one's output is added to the identity before the ReLU. */
  convs: ConvBnSpec[];
  /** The 1x1 projection of the identity (downsample.0 / downsample.1), when shapes change. */
  downsample?: ConvBnSpec;
}

export interface ResNetSpec {
  arch: Arch;
  block: 'basic' | 'bottleneck';
  widen: number;
  stem: ConvBnSpec;
  blocks: BlockSpec[];
  featureDim: number;
}

const BN_EPS = 1e-5;
export const BATCH_NORM_EPS = BN_EPS;

function convBn(conv: string, bn: string, inC: number, outC: number, k: number, stride: number): ConvBnSpec {
  return { conv, bn, inChannels: inC, outChannels: outC, kernel: k, stride, padding: Math.floor(k / 2) };
}

export function resnetSpec(arch: Arch): ResNetSpec {
  const bottleneck = arch.startsWith('resnet50');
  const widen = arch.endsWith('w3') ? 3 : 1;
  const depths = bottleneck ? [3, 4, 6, 3] : [2, 2, 2, 2];
  const expansion = bottleneck ? 4 : 1;
  let inplanes = 64 * widen;
  const stem = convBn('conv1', 'bn1', 3, inplanes, 7, 2);
  const blocks: BlockSpec[] = [];
  depths.forEach((depth, li) => {
    const planes = 64 * widen * 2 ** li;
    for (let b = 0; b < depth; b++) {
      const stride = b === 0 && li > 0 ? 2 : 1;
      const name = `layer${li + 1}.${b}`;
      const convs: ConvBnSpec[] = bottleneck
        ? [
            convBn(`${name}.conv1`, `${name}.bn1`, inplanes, planes, 1, 1),
            convBn(`${name}.conv2`, `${name}.bn2`, planes, planes, 3, stride),
            convBn(`${name}.conv3`, `${name}.bn3`, planes, planes * expansion, 1, 1),
          ]
        : [
            convBn(`${name}.conv1`, `${name}.bn1`, inplanes, planes, 3, stride),
            convBn(`${name}.conv2`, `${name}.bn2`, planes, planes, 3, 1),
          ];
      const block: BlockSpec = { name, convs };
      if (stride !== 1 || inplanes !== planes * expansion) {
        block.downsample = convBn(`${name}.downsample.0`, `${name}.downsample.1`, inplanes, planes * expansion, 1, stride);
      }
      blocks.push(block);
      inplanes = planes * expansion;
    }
  });
  return { arch, block: bottleneck ? 'bottleneck' : 'basic', widen, stem, blocks, featureDim: inplanes };
}

/** Every conv+bn pair of the network in execution order (stem, then per block: main path, downsample). */
export function allConvBns(spec: ResNetSpec): ConvBnSpec[] {
  const out = [spec.stem];
  for (const b of spec.blocks) {
    out.push(...b.convs);
    if (b.downsample) out.push(b.downsample);
  }
  return out;
}

/**
 * The state-dict keys and shapes of the backbone (fc excluded unless `fcClasses` is given), as
 * torchvision names them. `num_batches_tracked` buffers are listed with shape [] and are optional.
 */
export function expectedBackboneKeys(spec: ResNetSpec, fcClasses?: number): Map<string, number[]> {
  const keys = new Map<string, number[]>();
  for (const cb of allConvBns(spec)) {
    keys.set(`${cb.conv}.weight`, [cb.outChannels, cb.inChannels, cb.kernel, cb.kernel]);
    for (const p of ['weight', 'bias', 'running_mean', 'running_var']) keys.set(`${cb.bn}.${p}`, [cb.outChannels]);
    keys.set(`${cb.bn}.num_batches_tracked`, []);
  }
  if (fcClasses !== undefined) {
    keys.set('fc.weight', [fcClasses, spec.featureDim]);
    keys.set('fc.bias', [fcClasses]);
  }
  return keys;
}

export function isOptionalKey(key: string): boolean {
  return key.endsWith('.num_batches_tracked');
}

/**
 * Infers the architecture from parameter shapes: Bottleneck blocks have `layer1.0.conv3`, widen=3
 * nets have a 192-channel stem. Returns undefined when the keys fit none of the four.
 */
export function inferArch(shapes: Map<string, readonly number[]>): Arch | undefined {
  const stem = shapes.get('conv1.weight');
  if (!stem || stem.length !== 4) return undefined;
  const widen = stem[0] === 64 ? 1 : stem[0] === 192 ? 3 : 0;
  if (!widen) return undefined;
  const bottleneck = shapes.has('layer1.0.conv3.weight');
  const arch = `${bottleneck ? 'resnet50' : 'resnet18'}${widen === 3 ? 'w3' : ''}`;
  return isArch(arch) ? arch : undefined;
}

export function parseArch(s: string, where?: { file?: string; field?: string }): Arch {
  if (isArch(s)) return s;
  throw new SslInvError('ERR_CHECKPOINT_ARCH', `unknown architecture '${s}'; expected one of ${ARCHS.join(', ')}`, where);
}
