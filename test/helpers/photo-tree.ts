// The ImageFolder tree of the fixture photos that test/fixtures/e2e/make_e2e_fixtures.py builds (and
// whose features and labels it recorded): one class per source photo, named by the file name's
// first `_`-separated word, holding test/fixtures/images/inputs/* as they are.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const FIXTURE_PHOTOS = path.join(__dirname, '..', 'fixtures', 'images', 'inputs');

export function writePhotoTree(root: string): void {
  for (const name of fs.readdirSync(FIXTURE_PHOTOS)) {
    const cls = path.join(root, name.split('_')[0]!);
    fs.mkdirSync(cls, { recursive: true });
    fs.copyFileSync(path.join(FIXTURE_PHOTOS, name), path.join(cls, name));
  }
}
