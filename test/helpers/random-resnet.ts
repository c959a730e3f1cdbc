// Deterministic random parameters for any ResNet spec (for tests that need a network but not
// PyTorch's numbers): conv weights scaled like Kaiming, BN statistics in sane ranges.
import { Arch, allConvBns, resnetSpec } from '../../src/nn/resnet-spec';
import { ParamSource } from '../../src/nn/resnet';
import { randomArray } from './reference';

export function randomResNetParams(arch: Arch, seed = 1): ParamSource {
  const values = new Map<string, Float32Array>();
  let s = seed * 7919;
  for (const cb of allConvBns(resnetSpec(arch))) {
    const fan = cb.inChannels * cb.kernel * cb.kernel;
    values.set(`${cb.conv}.weight`, randomArray(cb.outChannels * fan, ++s, Math.sqrt(3 / fan)));
    values.set(`${cb.bn}.weight`, randomArray(cb.outChannels, ++s).map((v) => 1 + 0.3 * v));
    values.set(`${cb.bn}.bias`, randomArray(cb.outChannels, ++s, 0.1));
    values.set(`${cb.bn}.running_mean`, randomArray(cb.outChannels, ++s, 0.1));
    values.set(`${cb.bn}.running_var`, randomArray(cb.outChannels, ++s).map((v) => 1 + 0.5 * v));
  }
  return (key: string) => {
    const v = values.get(key);
    if (!v) throw new Error(`no parameter ${key}`);
    return v;
  };
}
