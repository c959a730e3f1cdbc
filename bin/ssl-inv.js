#!/usr/bin/env node
// The ssl-inv command line (compiled from src/cli). See `ssl-inv --help`.
'use strict';
require('../lib/cli/main.js')
  .main(process.argv)
  .then((code) => { process.exitCode = code; });
