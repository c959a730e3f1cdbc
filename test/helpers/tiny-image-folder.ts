/**
 * A tiny ImageFolder for the pretrain tests: `count` PNGs of deterministic patterns, 40 x 36 pixels
 * and up (each image a little larger than the one before), alternating between the classes `dog`
 * and `cat`, in root/train/<class>/img<i>.png.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';

export async function writeTinyImageFolder(root: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const w = 40 + i * 3, h = 36 + i * 2;
    const px = Buffer.alloc(w * h * 3);
    for (let j = 0; j < px.length; j++) px[j] = (j * 7 + i * 31 + (j % w) * 3) % 256;
    const cls = path.join(root, 'train', i % 2 ? 'cat' : 'dog');
    fs.mkdirSync(cls, { recursive: true });
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path.join(cls, `img${i}.png`));
  }
}
