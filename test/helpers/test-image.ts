// A small synthetic RGB image for tests and the device check (no decoder needed).
import { ImageU8 } from '../../src/image-ops';

/** A deterministic, textured 61 x 47 RGB image (gradients, stripes and noise). */
export function testImage(width = 61, height = 47): ImageU8 {
  const data = new Uint8Array(width * height * 3);
  let s = 12345;
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const n = (s >>> 24) & 31;
    const i = (y * width + x) * 3;
    data[i] = (x * 4 + n) & 255;
    data[i + 1] = (y * 5 + ((x >> 2) & 1) * 90 + n) & 255;
    data[i + 2] = ((x + y) * 3 + n * 2) & 255;
  }
  return { data, height, width, channels: 3 };
}

