// A DecodePool worker with faults on chosen files, for test/data/decode-pool.test.ts: the real worker
// (lib/data/decode-worker.js, built by `npm test`'s tsc) whose decode
//   - aborts the process (SIGABRT, as a codec crash would) for files named crash-*,
//   - never answers for files named hang-*,
//   - fails like an allocation failure for files named nomem-*, and for files named crowded-* when
//     another file is being decoded in this process at the time (an innocent file squeezed out of
//     the cap by a co-tenant),
//   - decodes files named slotfull-* but cannot write their pixels to the slot file (ENOSPC, as on
//     a full tmpfs), and files named slotshort-* but writes none of their pixels while saying it
//     wrote them all (what the pool must notice as a short slot file),
//   - otherwise decodes as decodeImageFile does.
// SSL_INV_TEST_WORKER_EXIT=N makes it print "cannot start (test)" and exit N before serving anything.
'use strict';
const path = require('node:path');
if (process.env.SSL_INV_TEST_WORKER_EXIT) {
  process.stderr.write('cannot start (test)\n');
  process.exit(Number(process.env.SSL_INV_TEST_WORKER_EXIT));
}
// The worker writes slots with fs.writeSync (through TypeScript's import getters, so this patch is
// what it calls); the pixel buffers of slotfull-/slotshort- files are marked when decoded.
const fs = require('node:fs');
const realWriteSync = fs.writeSync;
const slotFull = new WeakSet();
const slotShort = new WeakSet();
fs.writeSync = function (fd, buffer, ...rest) {
  if (slotFull.has(buffer)) {
    const e = new Error('ENOSPC: no space left on device, write');
    e.code = 'ENOSPC';
    throw e;
  }
  if (slotShort.has(buffer)) return rest[1];  // (offset, length, position): claims length bytes
  return realWriteSync.call(this, fd, buffer, ...rest);
};
const { main } = require('../../lib/data/decode-worker.js');
const { decodeImageFile } = require('../../lib/data/decode.js');

let inFlight = 0;
main(async (file, opts) => {
  inFlight++;
  try {
    return await faultyDecode(file, opts);
  } finally {
    inFlight--;
  }
});

async function faultyDecode(file, opts) {
  const name = path.basename(file);
  if (name.startsWith('crowded-') && inFlight > 1) throw new RangeError('Array buffer allocation failed');
  if (name.startsWith('crash-')) process.abort();
  if (name.startsWith('hang-')) return new Promise(() => undefined);
  if (name.startsWith('nomem-')) throw new RangeError('Array buffer allocation failed');
  const img = await decodeImageFile(file, opts);
  if (name.startsWith('slotfull-')) slotFull.add(img.data);
  if (name.startsWith('slotshort-')) slotShort.add(img.data);
  return img;
}
