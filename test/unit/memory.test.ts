// Resident memory stays flat over 10,000 forward passes of a small network: every intermediate is
// freed, and the host allocator's cache is bounded. The loop yields to the event loop now and then,
// as any real pipeline does (a data loader awaits its next batch): Node runs the finalisers of
// collected JS tensor wrappers there, so a loop that never yields accumulates wrappers (not native
// buffers: disposed tensors free those at once).
import t from 'tap';
import { ResNetFeatures } from '../../src/nn/resnet';
import * as ops from '../../src/ops';
import { memoryStats, tensor } from '../../src/tensor';
import { randomArray } from '../helpers/reference';
import { randomResNetParams } from '../helpers/random-resnet';

t.test('10,000 forward passes of ResNet-18 leave RSS and native buffers flat', async (t) => {
  const net = await ResNetFeatures.load('resnet18', randomResNetParams('resnet18'));
  const x = tensor(randomArray(2 * 3 * 16 * 16, 5), [2, 3, 16, 16]);
  const run = async (n: number) => {
    for (let i = 0; i < n; i++) {
      net.forward(x).dispose();
      if (i % 50 === 49) await new Promise(setImmediate);
    }
  };
  await run(2000); // warm up: the allocator cache, V8's heap and the test runner settle
  const buffers = memoryStats().liveBuffers;
  const rss0 = process.memoryUsage().rss;
  await run(8000);
  const rss1 = process.memoryUsage().rss;
  t.equal(memoryStats().liveBuffers, buffers, 'no native buffer outlives its forward pass');
  const growthMb = (rss1 - rss0) / 2 ** 20;
  t.ok(growthMb < 16, `RSS grew ${growthMb.toFixed(1)} MB over the last 8,000 passes (limit 16 MB)`);
  net.dispose();
  x.dispose();
});

t.test('buffers of every size class are reused: RSS stays flat over 20,000 create/dispose cycles', async (t) => {
  // 16 KiB (malloc path), 320 KiB (64 KiB-granule mmap path) and GEMM scratch buffers. glibc's
  // aligned_alloc leaked several KiB per cycle here before the host allocator stopped using it.
  const small = tensor(randomArray(64 * 64, 9), [64, 64]);
  const mid = tensor(randomArray(80 * 1024, 10), [80 * 1024]);
  const cycle = async (n: number) => {
    for (let i = 0; i < n; i++) {
      ops.relu(small).dispose();
      ops.relu(mid).dispose();
      ops.matmul(small, small).dispose();
      if (i % 500 === 499) await new Promise(setImmediate);
    }
  };
  await cycle(2000);
  const rss0 = process.memoryUsage().rss;
  await cycle(20000);
  const perCycle = (process.memoryUsage().rss - rss0) / 20000;
  // Three JS wrappers per cycle cost a few hundred bytes under the test runner; the leak was ~29 KiB.
  t.ok(perCycle < 2048, `RSS grew ${(perCycle / 1024).toFixed(2)} KiB per cycle (limit 2)`);
  small.dispose();
  mid.dispose();
});
