// Deterministic disposal: the objects that own native memory or processes implement Symbol.dispose
// (ResNetFeatures, TrainableResNet, MocoV2, NamedModel, LinearHead, CovarianceAccumulator; also SGD
// and TrainTape) or Symbol.asyncDispose (DecodePool), so a
// `using` / `await using` declaration frees them at the end of its block. Each is called here as
// `using` calls it (the symbol method, directly) and must free what dispose() / close() frees.
import t from 'tap';
import * as path from 'node:path';
import { memoryStats, tensor } from '../../src/tensor';
import { DecodePool } from '../../src/data/decode-pool';
import { LoadedModel } from '../../src/eval/model-loader';
import { NamedModel } from '../../src/eval/models';
import { ResNetFeatures } from '../../src/nn/resnet';
import { TrainableResNet } from '../../src/nn/resnet-train';
import { MocoV2 } from '../../src/train/moco';
import { LinearHead } from '../../src/train/linear-head';
import { CovarianceAccumulator } from '../../src/linalg';
import { freshMocoInit } from '../../src/train/moco-init';
import { randomResNetParams } from '../helpers/random-resnet';

const IMAGE = path.join(__dirname, '..', 'fixtures', 'images', 'inputs');

t.test('Symbol.dispose frees the networks', async (t) => {
  t.equal(typeof Symbol.dispose, 'symbol', 'the runtime defines Symbol.dispose (Node >= 20.4)');
  const start = memoryStats().liveBuffers;
  const cases: [string, () => Promise<{ [Symbol.dispose](): void }>][] = [
    ['ResNetFeatures', () => ResNetFeatures.load('resnet18', randomResNetParams('resnet18'))],
    ['TrainableResNet', () => TrainableResNet.load('resnet18', randomResNetParams('resnet18'))],
    ['MocoV2', () => MocoV2.create({ arch: 'resnet18', dim: 16, K: 16, m: 0.999, T: 0.2, mlp: true }, freshMocoInit('resnet18', 16, 16, true, 0))],
    ['NamedModel', async () => {
      const net = await ResNetFeatures.load('resnet18', randomResNetParams('resnet18'));
      const model = { net, arch: 'resnet18', archSource: 'option', file: 'r.pth.tar' } as unknown as LoadedModel;
      return new NamedModel('r', [{ name: 'r', file: 'r.pth.tar', sha256: '0'.repeat(64), model }], 'cat');
    }],
    ['LinearHead', async () => new LinearHead(true, 8, 4, (_k, shape) => new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.1))],
    ['CovarianceAccumulator', async () => {
      const acc = new CovarianceAccumulator(6);
      const x = tensor(Float32Array.from({ length: 18 }, (_, i) => Math.sin(i)), [3, 6]);
      acc.add(x);
      x.dispose();
      return acc;
    }],
  ];
  for (const [name, make] of cases) {
    // Each against its own count, so that one class's leak is not blamed on the next.
    const before = memoryStats().liveBuffers;
    const obj = await make();
    t.ok(memoryStats().liveBuffers > before, `${name}: holds native buffers`);
    obj[Symbol.dispose]();
    t.equal(memoryStats().liveBuffers, before, `${name}: all freed by [Symbol.dispose]()`);
    obj[Symbol.dispose]();
    t.equal(memoryStats().liveBuffers, before, `${name}: a second dispose is a no-op`);
  }
  t.equal(memoryStats().liveBuffers, start, 'nothing left');
});

t.test('Symbol.asyncDispose closes a DecodePool', async (t) => {
  t.equal(typeof Symbol.asyncDispose, 'symbol', 'the runtime defines Symbol.asyncDispose');
  const pool = new DecodePool({ workers: 1, memoryMiB: false });
  const file = path.join(IMAGE, 'astronaut_la_80x80.png');
  const img = await pool.decodeFile(file);
  t.ok(img.width > 0, 'decodes while open');
  await pool[Symbol.asyncDispose]();
  await t.rejects(pool.decodeFile(file), { code: 'ERR_INVALID_ARGUMENT', message: /closed/ }, 'closed by [Symbol.asyncDispose]()');
});

t.test('`using` and `await using` declarations', async (t) => {
  const start = memoryStats().liveBuffers;
  {
    using net = await ResNetFeatures.load('resnet18', randomResNetParams('resnet18'));
    t.ok(memoryStats().liveBuffers > start, `inside the block: the network's buffers (${net.featureDim} features)`);
  }
  t.equal(memoryStats().liveBuffers, start, 'freed at the end of the block');
  let pool: DecodePool | undefined;
  {
    await using p = new DecodePool({ workers: 1, memoryMiB: false });
    pool = p;
    await p.decodeFile(path.join(IMAGE, 'astronaut_la_80x80.png'));
  }
  await t.rejects(pool.decodeFile(path.join(IMAGE, 'astronaut_la_80x80.png')), { message: /closed/ }, 'the pool is closed at the end of the block');
});
