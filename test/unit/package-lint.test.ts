// package.json as a published package (publint --strict, on what `npm pack` would ship): the exports
// map's targets exist and are packed, the types condition comes first, "type" is stated. Needs lib/
// (npm test's tsc step builds it); skipped without it.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const built = fs.existsSync(path.join(root, 'lib', 'index.d.ts'));

t.test('publint --strict finds nothing', { skip: built ? false : 'lib/ not built (npm test builds it)' }, async (t) => {
  const r = spawnSync(path.join(root, 'node_modules', '.bin', 'publint'), ['--strict'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  t.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  t.match(r.stdout, /All good!/, r.stdout);
});
