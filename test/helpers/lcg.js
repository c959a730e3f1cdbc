// Seeded uniform values in (-scale/2, scale/2) from a 32-bit linear congruential generator (Numerical
// Recipes' constants), for the plain-JS test helpers that run in child processes and worker threads,
// where the TypeScript helpers (reference.ts) are not loaded.
'use strict';

function uniform(len, seed, scale) {
  let x = seed >>> 0;
  return Float32Array.from({ length: len }, () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * scale);
}

module.exports = { uniform };
