/**
 * A decompression bomb inside the pixel limit: a side x side white PNG (default 13000: 169M pixels,
 * under Pillow's 178,956,970, the default limit) of under 1 MB that decodes to side^2 * 3 bytes
 * (507 MB, more than a 384 MiB cap however little else the process holds). For the tests of decoding
 * in memory-capped processes; never decode it in the test process.
 */
import sharp from 'sharp';

export async function writePngBomb(file: string, side = 13000): Promise<void> {
  await sharp({ create: { width: side, height: side, channels: 3, background: '#ffffff' } }).png({ compressionLevel: 9 }).toFile(file);
}
