#!/usr/bin/env node
// The ssl-inv command line (compiled from src/cli). See `ssl-inv --help`.
'use strict';
const cli = require('../lib/cli/main.js');
cli.installInterruptCleanup();
cli.main(process.argv).then((code) => { process.exitCode = code; });
