/**
 * The starting point of a fresh MoCo v2 run, seeded: what builder.MoCo's constructor makes, with
 * numpy's RandomState in place of torch's generator (the original's start is unseeded anyway).
 *
 *  - encoder_q's backbone and its last Linear (fc, or fc.2 with the MLP head): torchvision's init
 *    (torchvision-init.ts, RandomState(seed)); Linear(D, dim) keeps nn.Linear's default,
 *    U(-1/sqrt(D), 1/sqrt(D)) for weight and bias;
 *  - the MLP's first Linear(D, D) (fc.0): nn.Linear's default, drawn from RandomState(seed + 1);
 *  - encoder_k: a copy of encoder_q (builder.py copies every parameter);
 *  - the queue: randn(dim, K) from RandomState(seed + 2), each column normalised (F.normalize(dim=0)).
 */
import { SslInvError } from '../errors';
import { TorchTensor } from '../io/torch-save';
import { Arch, resnetSpec } from '../nn/resnet-spec';
import { torchvisionInitStateDict } from '../nn/torchvision-init';
import { RandomState } from '../random/mt19937';
import { MocoInit } from './moco';

export function freshMocoInit(arch: Arch, dim: number, K: number, mlp: boolean, seed: number): MocoInit {
  const sd = torchvisionInitStateDict(arch, seed >>> 0, dim);
  const values = new Map<string, Float32Array>();
  for (const [k, v] of sd) {
    if (!(v instanceof TorchTensor) || v.dtype !== 'float32') continue;
    const name = k.startsWith('fc.') && mlp ? `fc.2.${k.slice(3)}` : k;
    values.set(name, v.data as Float32Array);
  }
  if (mlp) {
    const d = resnetSpec(arch).featureDim;
    const rs = new RandomState((seed + 1) >>> 0);
    const bound = 1 / Math.sqrt(d);
    const w = new Float32Array(d * d);
    for (let i = 0; i < w.length; i++) w[i] = rs.uniform(-bound, bound);
    const b = new Float32Array(d);
    for (let i = 0; i < d; i++) b[i] = rs.uniform(-bound, bound);
    values.set('fc.0.weight', w);
    values.set('fc.0.bias', b);
  }
  const rs = new RandomState((seed + 2) >>> 0);
  const queue = new Float32Array(dim * K);
  for (let i = 0; i < queue.length; i++) queue[i] = rs.standardNormal();
  for (let j = 0; j < K; j++) {
    let s = 0;
    for (let c = 0; c < dim; c++) s += queue[c * K + j]! ** 2;
    const norm = Math.max(Math.sqrt(s), 1e-12);
    for (let c = 0; c < dim; c++) queue[c * K + j] = queue[c * K + j]! / norm;
  }
  return {
    encoderQ: (key) => {
      const v = values.get(key);
      if (!v) throw new SslInvError('ERR_INVALID_ARGUMENT', `no initial value for ${key}`, { field: key });
      return v;
    },
    queue,
  };
}
