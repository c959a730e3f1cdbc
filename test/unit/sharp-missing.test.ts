// An install without sharp's platform binary (data/sharp-module.ts): the package still imports, and
// everything but images works; decoding is ERR_NATIVE_LOAD with sharp's message and the fix, from
// the API and the CLI (exit status 1), never sharp's uncoded error at import time.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const block = path.join(root, 'test', 'helpers', 'block-sharp.js');

t.test('without sharp: the package imports, checkpoints load, decoding says what is missing', async (t) => {
  const script = `
    const lib = require('./lib');
    (async () => {
      const out = { imported: typeof lib.loadCheckpoint };
      out.checkpoint = (await lib.loadCheckpoint('test/fixtures/io/torch_state.pt')).format;
      try { await lib.decodeImageFile('test/fixtures/images/inputs/china_333x251_420.jpg'); out.decoded = true; }
      catch (e) { out.decode = { code: e.code, message: e.message }; }
      process.stdout.write(JSON.stringify(out));
    })();`;
  const r = spawnSync(process.execPath, ['-r', block, '-e', script], { cwd: root, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.equal(out.imported, 'function', 'the package imports');
  t.equal(out.checkpoint, 'zip', 'a checkpoint loads');
  t.match(out.decode, { code: 'ERR_NATIVE_LOAD', message: /image library \(sharp\) cannot be loaded: Could not load the sharp module .*Reinstall it for this platform: npm install --os=\w+ --cpu=\w+ sharp/ });
});

t.test('without sharp: the CLI runs, and a command that decodes fails with the code', async (t) => {
  const cli = (args: string[]) => spawnSync(process.execPath, ['-r', block, path.join(root, 'bin', 'ssl-inv.js'), ...args], { cwd: root, encoding: 'utf8' });
  const info = cli(['info', '--json']);
  t.equal(info.status, 0, info.stderr);
  const out = path.join(os.tmpdir(), `ssl-inv-nosharp-${process.pid}.png`);
  t.teardown(() => fs.rmSync(out, { force: true }));
  const views = cli(['views', 'test/fixtures/images/inputs/china_333x251_420.jpg', '--transform', 'h_flip', '--k', '2', '--out', out]);
  t.equal(views.status, 1);
  t.match(views.stderr, /^ssl-inv: error ERR_NATIVE_LOAD: the image library \(sharp\) cannot be loaded/m);
  t.notMatch(views.stderr, /^\s+at /m, 'no stack trace');
  t.notOk(fs.existsSync(out), 'nothing written');
});
