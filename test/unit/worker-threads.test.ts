// The package in worker threads (the way to keep a server's event loop free during CPU inference:
// every forward pass is synchronous native work on the calling thread). The addon is context-aware:
//   1. four workers at once, two images sets each twice, give the main thread's features bit for
//      bit (the native thread pool and allocator are shared by every thread of the process), while
//      the main thread's timers keep firing;
//   2. a worker terminated in the middle of its forward passes leaves the process and the package
//      working (the addon's per-thread state is torn down with the thread).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

const root = path.resolve(__dirname, '..', '..');
const helper = path.join(root, 'test', 'helpers', 'worker-features.js');
const built = fs.existsSync(path.join(root, 'lib', 'index.js'));
const { features } = (built ? require(helper) : {}) as { features: (seed: number, passes: number) => Promise<string> };

function inWorker(data: Record<string, unknown>, onStart?: (w: Worker) => void): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const w = new Worker(helper, { workerData: data });
    onStart?.(w);
    w.once('message', resolve);
    w.once('error', reject);
  });
}

t.test('features in four worker threads at once: the main thread\'s bits; the main thread stays free',
  { skip: built ? false : 'lib/ not built (npm test builds it)' }, async (t) => {
    const ref = [await features(1, 1), await features(2, 1)];
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const got = await Promise.all([1, 2, 1, 2].map((seed) => inWorker({ seed, passes: 3 })));
    clearInterval(timer);
    t.same(got, [ref[0], ref[1], ref[0], ref[1]], 'every worker\'s features are the main thread\'s, bit for bit');
    t.ok(ticks >= 10, `the main thread's timer fired ${ticks} times meanwhile`);
  });

t.test('a worker terminated mid-work leaves the process working', { skip: built ? false : 'lib/ not built' }, async (t) => {
  let worker: Worker | undefined;
  const started = await inWorker({ seed: 3, spin: true }, (w) => { worker = w; });
  t.equal(started, 'started');
  await new Promise((r) => setTimeout(r, 300));  // inside its loop of forward passes by now
  const code = await worker!.terminate();
  t.equal(code, 1, 'terminated');
  t.equal(await features(1, 1), await features(1, 1), 'this thread computes as before');
  t.equal(await inWorker({ seed: 2, passes: 1 }), await features(2, 1), 'and a new worker too');
});
