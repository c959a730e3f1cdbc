/**
 * A freshly initialised torchvision ResNet's state dict (what `models.resnet50()` holds before
 * training), with numpy's legacy generator for reproducibility: the original's `random` model.
 *
 * torchvision's initialisation: every conv weight ~ N(0, 2 / fan_out) (kaiming_normal_, mode
 * 'fan_out', nonlinearity 'relu'; fan_out = out_channels * kh * kw); batch norms weight 1, bias 0,
 * running_mean 0, running_var 1, num_batches_tracked 0; fc keeps nn.Linear's default init, weight and
 * bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)). The draws come from np.random.RandomState(seed) in
 * state-dict order (normals for conv weights, then uniforms for fc), so the same weights can be made
 * in Python; they are not PyTorch's generator's (the original's random model was unseeded anyway).
 */
import { TorchTensor } from '../io/torch-save';
import { RandomState } from '../random/mt19937';
import { Arch, allConvBns, resnetSpec } from './resnet-spec';

export function torchvisionInitStateDict(arch: Arch, seed: number, numClasses = 1000): Map<string, TorchTensor> {
  const spec = resnetSpec(arch);
  const rs = new RandomState(seed);
  const sd = new Map<string, TorchTensor>();
  for (const cb of allConvBns(spec)) {
    const n = cb.outChannels * cb.inChannels * cb.kernel * cb.kernel;
    const std = Math.sqrt(2 / (cb.outChannels * cb.kernel * cb.kernel));
    const w = new Float32Array(n);
    for (let i = 0; i < n; i++) w[i] = rs.standardNormal() * std;
    sd.set(`${cb.conv}.weight`, new TorchTensor('float32', [cb.outChannels, cb.inChannels, cb.kernel, cb.kernel], w));
    const c = cb.outChannels;
    sd.set(`${cb.bn}.weight`, new TorchTensor('float32', [c], new Float32Array(c).fill(1)));
    sd.set(`${cb.bn}.bias`, new TorchTensor('float32', [c], new Float32Array(c)));
    sd.set(`${cb.bn}.running_mean`, new TorchTensor('float32', [c], new Float32Array(c)));
    sd.set(`${cb.bn}.running_var`, new TorchTensor('float32', [c], new Float32Array(c).fill(1)));
    sd.set(`${cb.bn}.num_batches_tracked`, new TorchTensor('int64', [], BigInt64Array.from([0n])));
  }
  const bound = 1 / Math.sqrt(spec.featureDim);
  const fw = new Float32Array(numClasses * spec.featureDim);
  for (let i = 0; i < fw.length; i++) fw[i] = rs.uniform(-bound, bound);
  const fb = new Float32Array(numClasses);
  for (let i = 0; i < numClasses; i++) fb[i] = rs.uniform(-bound, bound);
  sd.set('fc.weight', new TorchTensor('float32', [numClasses, spec.featureDim], fw));
  sd.set('fc.bias', new TorchTensor('float32', [numClasses], fb));
  return sd;
}
