// TrainTape.copyTo (src/nn/resnet-train.ts): a copy of every saved tensor on a device, owned by the
// copy. On the CPU: the backward of the copy gives the original's bits, the original stays usable
// (and its own backward gives the same bits after), the copy's tensors are not the original's, and
// a consumed tape cannot be copied.
import t from 'tap';
import { TrainableResNet } from '../../src/nn/resnet-train';
import { tensor } from '../../src/tensor';
import { torchvisionInitStateDict } from '../../src/nn/torchvision-init';

t.test('copyTo: the same backward, bit for bit; the original untouched', async (t) => {
  const sd = torchvisionInitStateDict('resnet18', 3);
  const net = await TrainableResNet.load('resnet18', (k) => Float32Array.from(sd.get(k)!.data as Float32Array));
  const x = tensor(Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37)), [2, 3, 32, 32]);
  const g = tensor(Float32Array.from({ length: 2 * 512 }, (_, i) => Math.cos(i * 0.11) * 1e-2), [2, 512]);
  try {
    const { features, tape } = net.forwardTrain(x);
    features.dispose();
    const copy = tape.copyTo('cpu');
    t.not(copy.stem.x, tape.stem.x, 'the copy holds tensors of its own');
    const a = net.backward(copy, g);
    t.ok(copy.disposed, 'backward consumed the copy');
    t.notOk(tape.disposed, 'and left the original');
    const b = net.backward(tape, g);
    let same = true;
    for (const [k, v] of a.grads) {
      const u = v.toFloat32Array(), w = b.grads.get(k)!.toFloat32Array();
      same &&= u.every((e, i) => Object.is(e, w[i]));
    }
    t.ok(same, `all ${a.grads.size} gradients: the same bits`);
    for (const r of [a, b]) for (const v of r.grads.values()) v.dispose();
    t.throws(() => tape.copyTo('cpu'), { code: 'ERR_TENSOR_DISPOSED' }, 'a consumed tape cannot be copied');
  } finally {
    net.dispose();
    x.dispose();
    g.dispose();
  }
});
