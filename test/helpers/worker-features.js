// Run by test/unit/worker-threads.test.ts, in the main thread or a worker thread: loads the package
// (lib/), builds a ResNet-18 from seeded weights and returns a digest of its features of seeded
// images (several passes, so that threads overlap). In a worker it posts the digest; with
// workerData.spin it loops until terminated, to check that terminating mid-work is safe.
'use strict';
const { createHash } = require('node:crypto');
const { isMainThread, parentPort, workerData } = require('node:worker_threads');
const lib = require('../../lib');

const { uniform } = require('./lcg');

const seeded = (len, seed) => uniform(len, seed, 0.2);

async function features(seed, passes) {
  const spec = lib.resnetSpec('resnet18');
  const shapes = lib.expectedBackboneKeys(spec);
  let k = 0;
  const net = await lib.ResNetFeatures.load('resnet18', (key) => {
    const shape = shapes.get(key);
    const n = shape.reduce((a, b) => a * b, 1);
    if (key.endsWith('running_var')) return new Float32Array(n).fill(1);
    return seeded(n, 1000 + k++);
  });
  const x = lib.tensor(seeded(2 * 3 * 48 * 48, seed), [2, 3, 48, 48]);
  let f;
  for (let r = 0; r < passes; r++) {
    const y = net.forward(x);
    f = y.toFloat32Array();
    y.dispose();
  }
  x.dispose();
  net.dispose();
  return createHash('sha256').update(new Uint8Array(f.buffer)).digest('hex');
}

module.exports = { features };

if (!isMainThread) {
  if (workerData.spin) {
    parentPort.postMessage('started');
    (async () => { for (;;) await features(workerData.seed, 1); })();
  } else {
    features(workerData.seed, workerData.passes).then((h) => parentPort.postMessage(h));
  }
}
