// ImageFolder listing against torchvision 0.14's (golden.json holds the tree and torchvision's
// samples), and the layout errors of RELIABILITY.md case 27.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { IMG_EXTENSIONS, compareCodePoints, findClasses, listImageFolder } from '../../src/data/image-folder';
import { golden } from './fixtures';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-folder-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
function makeTree(tree: Record<string, string | null>): string {
  const root = path.join(tmp, `root${n++}`);
  fs.mkdirSync(root);
  for (const [rel, target] of Object.entries(tree)) {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (target === null) fs.writeFileSync(p, '');
  }
  for (const [rel, target] of Object.entries(tree)) {
    if (target !== null) fs.symlinkSync(target, path.join(root, rel));
  }
  return root;
}

t.test('code point order, as Python sorts str', async (t) => {
  const names = ['b', 'B', 'a b', 'a', '\u00e4', '\uff5a', '\u{1F600}', '_', '.h', 'a/b', 'a c'];
  t.same([...names].sort(compareCodePoints), ['.h', 'B', '_', 'a', 'a b', 'a c', 'a/b', 'b', '\u00e4', '\uff5a', '\u{1F600}']);
  t.not([...names].sort().join('|'), [...names].sort(compareCodePoints).join('|'),
    'differs from the UTF-16 default sort (U+FF5A vs U+1F600)');
});

t.test('the same classes and samples, in the same order, as torchvision', async (t) => {
  const g = golden.imageFolder;
  const root = makeTree(g.tree);
  const listing = await listImageFolder(root);
  t.same(listing.classes, g.classes);
  t.same([...listing.classToIdx.entries()], g.classes.map((c, i) => [c, i]));
  t.same(listing.samples.map((s) => [path.relative(root, s.path), s.classIndex]), g.samples);
  t.same(await findClasses(root), g.classes);
  t.same(IMG_EXTENSIONS, ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp']);
});

t.test('layout errors name what was expected', async (t) => {
  const missing = path.join(tmp, 'no-such-split');
  await t.rejects(listImageFolder(missing), { code: 'ERR_DATASET_LAYOUT', file: missing, message: /does not exist.*class/ });
  const file = path.join(tmp, 'a-file');
  fs.writeFileSync(file, '');
  await t.rejects(listImageFolder(file), { code: 'ERR_DATASET_LAYOUT', message: /not a directory/ });
  const flat = makeTree({ 'x.jpg': null, 'y.png': null });
  await t.rejects(listImageFolder(flat), { code: 'ERR_DATASET_LAYOUT', message: /no class directory/ });
  const emptyClasses = makeTree({ 'cat/1.jpg': null, 'dog/readme.txt': null, 'emu/sub/notes': null, 'fox/2.JPEG': null });
  fs.mkdirSync(path.join(emptyClasses, 'ant'));
  const err = await listImageFolder(emptyClasses).catch((e: unknown) => e);
  t.match(err, { code: 'ERR_DATASET_LAYOUT', message: /found no valid file for the classes ant, dog, emu\. Supported extensions/ });
});

t.test('symbolic link loops are reported, not followed forever', async (t) => {
  const root = makeTree({ 'a/1.jpg': null, 'a/sub/2.jpg': null, 'a/sub/back': '..', 'b/3.jpg': null });
  await t.rejects(listImageFolder(root), { code: 'ERR_DATASET_LAYOUT', message: /symbolic link loop/,
    file: path.join(root, 'a', 'sub', 'back') });
  const self = makeTree({ 'a/1.jpg': null, 'self': '.' });
  await t.rejects(listImageFolder(self), { code: 'ERR_DATASET_LAYOUT', message: /symbolic link loop/ });
  // Two links to the same directory are not a loop: listed twice, as torchvision does.
  const twice = makeTree({ 'shared/1.jpg': null, 'a/l1': '../shared', 'a/l2': '../shared' });
  const listing = await listImageFolder(twice);
  t.same(listing.samples.map((s) => path.relative(twice, s.path)), ['a/l1/1.jpg', 'a/l2/1.jpg', 'shared/1.jpg']);
});

t.test('unreadable directories are errors', { skip: process.getuid?.() === 0 ?
  'running as root: permissions do not apply' : false }, async (t) => {
  const root = makeTree({ 'a/1.jpg': null, 'a/locked/2.jpg': null });
  fs.chmodSync(path.join(root, 'a', 'locked'), 0);
  t.teardown(() => fs.chmodSync(path.join(root, 'a', 'locked'), 0o755));
  await t.rejects(listImageFolder(root), { code: 'ERR_DATASET_LAYOUT', file: path.join(root, 'a', 'locked') });
});

t.test('a file name that is not valid UTF-8 is an error naming its directory', async (t) => {
  const root = makeTree({ 'a/1.jpg': null });
  const dir = Buffer.from(path.join(root, 'a'));
  try {
    fs.writeFileSync(Buffer.concat([dir, Buffer.from('/\xff.jpg', 'latin1')]), '');
  } catch {
    t.pass('this file system refuses such names: nothing to test');
    return;
  }
  await t.rejects(listImageFolder(root), { code: 'ERR_DATASET_LAYOUT', file: path.join(root, 'a'), message: /UTF-8/ });
});
