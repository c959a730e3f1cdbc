// --seed, one rule in every command (cli/common.ts parseSeed): decimal digits for a uint32, as
// Python's int() reads them. Number() alone would take '' as 0, '0x10' as 16 and '1e3' as 1000, and
// a seed of 2**32 would wrap (mulberry32 takes seed >>> 0) to seed 0's run: each of those used to be
// accepted by some command and now is a usage error.
import t from 'tap';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseSeed } from '../../src/cli/common';
import { runCli } from '../helpers/cli';

const BAD = ['', ' ', '0x10', '1e3', '-1', '1.5', '4294967296', 'NaN', '+1', '1_000', 'seven'];

t.test('parseSeed', async (t) => {
  t.equal(parseSeed('0'), 0);
  t.equal(parseSeed('4294967295'), 0xffffffff, 'the largest uint32');
  t.equal(parseSeed(' 7 '), 7, 'blanks around the digits, as int(" 7 ")');
  t.equal(parseSeed('007'), 7);
  for (const v of BAD) t.throws(() => parseSeed(v), { code: 'ERR_USAGE', message: /--seed takes an integer from 0 to 2\*\*32 - 1/ }, `'${v}'`);
});

t.test('every command that takes --seed refuses the same values', async (t) => {
  const nowhere = path.join(os.tmpdir(), 'ssl-inv-no-such-dir');
  const commands: string[][] = [
    ['demo', '--out-dir', nowhere],
    ['views', path.join(nowhere, 'x.png'), '--transform', 'rotation', '--out', path.join(nowhere, 'v.npy')],
    ['probe', '--features', path.join(nowhere, 'x.npy')],
    ['eval-synthetic', nowhere],
    ['pretrain', nowhere],
  ];
  for (const cmd of commands) {
    for (const v of ['', '0x10', '1e3', '4294967296']) {
      const r = await runCli([...cmd, '--seed', v]);
      t.equal(r.code, 2, `${cmd[0]} --seed '${v}': a usage error`);
      t.match(r.stderr, /ERR_USAGE: .*--seed/, `${cmd[0]} --seed '${v}': says which flag`);
    }
  }
});
