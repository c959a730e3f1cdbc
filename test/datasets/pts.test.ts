// .pts landmark files (src/io/pts.ts): the 300-W format, its accepted variations, and the line-numbered
// errors of RELIABILITY.md case 25.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { parsePts, readPts } from '../../src/io/pts';
import { DATA } from './helpers';

const pts = (lines: string[], nl = '\n'): string => lines.join(nl) + nl;
const body = (n: number): string[] => Array.from({ length: n }, (_, i) => `${i}.500 ${2 * i}.25`);
const file3 = (n = 3, declared = 3): string[] => ['version: 1', `n_points:  ${declared}`, '{', ...body(n), '}'];

t.test('the real format, with CRLF, a BOM, blanks and no final line end', async (t) => {
  const want = [0.5, 0.25, 1.5, 2.25, 2.5, 4.25];
  t.same(Array.from(parsePts(pts(file3()), 'a.pts').points), want);
  t.same(Array.from(parsePts(pts(file3(), '\r\n'), 'b.pts').points), want, 'CRLF');
  t.same(Array.from(parsePts('\ufeff' + pts(file3()), 'c.pts').points), want, 'BOM');
  t.same(Array.from(parsePts(Buffer.from('\ufeff' + pts(file3(), '\r\n')), 'd.pts').points), want, 'UTF-8 bytes with BOM and CRLF');
  t.same(Array.from(parsePts(file3().join('\n'), 'e.pts').points), want, 'no final newline');
  t.same(Array.from(parsePts(pts(['version: 1', 'n_points: 1', '{', '  1e2\t -3  ', '}', '', '']), 'f.pts').points), [100, -3]);
  const p = parsePts(pts(file3()), 'a.pts', { expectedPoints: 3 });
  t.match(p, { version: '1', count: 3, file: 'a.pts' });
  // fixture files of the 300W set: indoor_003 has CRLF line ends, indoor_004 a BOM
  const crlfFile = path.join(DATA, '300W', '01_Indoor', 'indoor_003.pts');
  t.ok(fs.readFileSync(crlfFile).includes('\r\n'));
  t.equal((await readPts(crlfFile, { expectedPoints: 68 })).points.length, 136);
  const bomFile = path.join(DATA, '300W', '01_Indoor', 'indoor_004.pts');
  t.ok(fs.readFileSync(bomFile).subarray(0, 3).equals(Buffer.from([0xef, 0xbb, 0xbf])));
  t.equal((await readPts(bomFile)).count, 68);
});

t.test('bad files: line-numbered errors (case 25)', async (t) => {
  const bad = (text: string, field: string, re: RegExp, opts = {}): void => {
    t.throws(() => parsePts(text, 'x.pts', opts), { code: 'ERR_DATASET_LAYOUT', file: 'x.pts', field, message: re }, `${field}: ${re}`);
  };
  bad(pts(file3(2, 3)), 'line 6', /'}' after 2 points; n_points says 3/);
  bad(pts(file3(4, 3)), 'line 7', /more points than n_points \(3\); expected '}'/);
  bad(pts(file3(2, 3), '\r\n'), 'line 6', /'}' after 2 points/, {});
  bad(pts(file3()), 'line 2', /n_points is 3; expected 68/, { expectedPoints: 68 });
  bad(pts(['version: 1', 'n_points: 3', ...body(3), '}']), 'line 3', /expected '\{', found "0\.500 0\.25"/);
  bad(pts(['version: 1', 'n_points: 3', '{', ...body(3)]), 'line 7', /without the closing '}'/);
  bad(['version: 1', 'n_points: 3', '{', '1 2'].join('\n'), 'line 5', /file ends after 1 of the 3 points/);
  bad(pts(['version: 1', 'n_points: 2', '{', '1 nan', '3 4', '}']), 'line 4', /"nan" is not a finite number/);
  bad(pts(['version: 1', 'n_points: 2', '{', '1 2', '-inf 4', '}']), 'line 5', /"-inf" is not a finite number/);
  bad(pts(['version: 1', 'n_points: 2', '{', '1 2', '3,4', '}']), 'line 5', /expected two numbers 'x y'/);
  bad(pts(['version: 1', 'n_points: 2', '{', '1 2', '3 4x', '}']), 'line 5', /"4x" is not a number/);
  bad(pts(['version: 1', 'n_points: 2', '{', '1 2', '', '}']), 'line 5', /expected two numbers/);
  bad(pts(['n_points: 2', '{', '1 2', '3 4', '}']), 'line 1', /expected 'version: 1'/);
  bad(pts(['version: 2', 'n_points: 2']), 'line 1', /unsupported version "2"/);
  bad(pts(['version: 1', 'points: 2']), 'line 2', /expected 'n_points: N'/);
  bad(pts([...file3(), 'extra']), 'line 8', /unexpected text after '}'/);
  bad('', 'line 1', /file is empty/);
  t.throws(() => parsePts(Buffer.from([0x76, 0xff, 0xfe]), 'y.pts'), { code: 'ERR_DATASET_LAYOUT', file: 'y.pts', message: /not valid UTF-8/ });
  await t.rejects(readPts('/nonexistent/z.pts'), { code: 'ERR_DATASET_LAYOUT', file: '/nonexistent/z.pts', message: /missing landmark file/ });
});
