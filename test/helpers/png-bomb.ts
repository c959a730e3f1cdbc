/**
 * A decompression bomb inside the pixel limit: a side x side white PNG (default 16000: 256M pixels,
 * under sharp's 268M limit) of under 1 MB that decodes to side^2 * 3 bytes (768 MB). For the tests
 * of decoding in memory-capped processes; never decode it in the test process.
 */
import sharp from 'sharp';

export async function writePngBomb(file: string, side = 16000): Promise<void> {
  await sharp({ create: { width: side, height: side, channels: 3, background: '#ffffff' } }).png({ compressionLevel: 9 }).toFile(file);
}
