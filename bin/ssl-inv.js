#!/usr/bin/env node
// The ssl-inv command line (compiled from src/cli). See `ssl-inv --help`.
'use strict';
// libuv's thread pool (file reads, sharp's decodes, the native image ops' async calls such as the
// augmentations of `pretrain`) has 4 threads unless UV_THREADPOOL_SIZE says otherwise; it is sized
// when first used, so this must run before anything queues work. One thread per core (never fewer
// than the default 4: the pool also waits on file reads), unless the user chose.
if (!process.env.UV_THREADPOOL_SIZE) {
  const os = require('os');
  process.env.UV_THREADPOOL_SIZE = String(Math.max(4, os.availableParallelism ? os.availableParallelism() : os.cpus().length));
}
// A reader that goes away (`ssl-inv info | head -3`) makes stdout's writes fail with EPIPE; the
// command then goes on without its table (its files are still written) instead of dying with an
// unhandled 'error' event and a stack trace.
process.stdout.on('error', (e) => {
  if (e && e.code === 'EPIPE') {
    process.stdout.write = () => true;
    return;
  }
  throw e;
});
const cli = require('../lib/cli/main.js');
cli.installInterruptCleanup();
cli.main(process.argv).then((code) => { process.exitCode = code; });
