// Preloaded (node -r) by test/unit/sharp-missing.test.ts: makes `require('sharp')` fail as it does on
// an install without sharp's platform binary, to check what still works and what the error says.
'use strict';
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === 'sharp') throw new Error('Could not load the sharp module using the linux-x64 runtime (test)');
  return resolve.call(this, request, ...rest);
};
