// ESM users: `import { loadFeatureExtractor } from 'ssl-invariances'` from an .mjs file. The package
// is CommonJS (lib/, built by `npm test`'s tsc step); Node finds its named exports by reading the
// compiled re-exports (cjs-module-lexer), so every name require() gives must also be a named ESM
// export. A re-export written in a form the lexer cannot see would drop names silently: this test
// imports the built package by name, from outside the repository, in a child process; and checks
// the exports map (the root and package.json only).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

t.test('named ESM imports of the package', { skip: fs.existsSync(path.join(ROOT, 'lib', 'index.js')) ? false : 'lib/ not built (npm test builds it)' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-esm-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'ssl-invariances'), 'dir');
  fs.writeFileSync(path.join(dir, 'main.mjs'), `
import { createRequire } from 'node:module';
import * as esm from 'ssl-invariances';
import { loadFeatureExtractor, tensor, ops, MocoV2, SslInvError } from 'ssl-invariances';
const require = createRequire(import.meta.url);
const cjs = require('ssl-invariances');
let deep = 'allowed';
try { require('ssl-invariances/lib/device'); } catch (e) { deep = e.code; }
const names = Object.keys(cjs);
const t = tensor(new Float32Array([1, 2, 3, 4]), [2, 2]);
console.log(JSON.stringify({
  cjs: names.length, missing: names.filter((k) => !(k in esm)),
  kinds: [typeof loadFeatureExtractor, typeof ops.conv2d, typeof MocoV2, typeof SslInvError],
  sum: Array.from(t.toFloat32Array()).reduce((a, b) => a + b, 0),
  version: require('ssl-invariances/package.json').version, deep,
}));
`);
  const r = spawnSync(process.execPath, [path.join(dir, 'main.mjs')], { cwd: dir, encoding: 'utf8' });
  t.equal(r.status, 0, 'the module loads', { stderr: r.stderr });
  const out = JSON.parse(r.stdout) as { cjs: number; missing: string[]; kinds: string[]; sum: number; version: string; deep: string };
  t.ok(out.cjs > 50, `${out.cjs} exports`);
  t.same(out.missing, [], 'every CommonJS export is a named ESM export');
  t.same(out.kinds, ['function', 'function', 'function', 'function']);
  t.equal(out.sum, 10, 'and the native addon works through it');
  // package.json's exports map: the root and package.json are the public entry points.
  t.equal(out.version, JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version, 'package.json is exported');
  t.equal(out.deep, 'ERR_PACKAGE_PATH_NOT_EXPORTED', 'lib/ modules are not: the API is what the root exports');
});
