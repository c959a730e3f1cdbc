/**
 * A seeded, randomly initialised ResNet for the demo: conv weights drawn like torchvision's
 * kaiming_normal_(mode='fan_out', nonlinearity='relu') (normal, std sqrt(2 / fan_out)), batch norms
 * at their initial state (weight 1, bias 0, running mean 0, running var 1), as a freshly built
 * torchvision model in eval mode. The numbers come from our own PRNG (mulberry32 + Box-Muller), not
 * from PyTorch's generator, so they are reproducible here but not equal to torch.manual_seed's.
 */
import { ParamSource } from '../nn/resnet';
import { Arch, allConvBns, resnetSpec } from '../nn/resnet-spec';
import { mulberry32 } from './scenes';

export function randomResNetSource(arch: Arch, seed: number): ParamSource {
  const rand = mulberry32(seed);
  const normal = () => {
    const u = 1 - rand(), v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const params = new Map<string, Float32Array>();
  for (const cb of allConvBns(resnetSpec(arch))) {
    const fanOut = cb.outChannels * cb.kernel * cb.kernel;
    const std = Math.sqrt(2 / fanOut);
    params.set(`${cb.conv}.weight`, Float32Array.from({ length: cb.outChannels * cb.inChannels * cb.kernel * cb.kernel }, () => normal() * std));
    params.set(`${cb.bn}.weight`, new Float32Array(cb.outChannels).fill(1));
    params.set(`${cb.bn}.bias`, new Float32Array(cb.outChannels));
    params.set(`${cb.bn}.running_mean`, new Float32Array(cb.outChannels));
    params.set(`${cb.bn}.running_var`, new Float32Array(cb.outChannels).fill(1));
  }
  return (key) => {
    const v = params.get(key);
    if (!v) throw new Error(`randomResNetSource: no parameter ${key}`);
    return v;
  };
}
