/**
 * The host's byte order and in-place byte swapping, for the readers and writers of raw tensor bytes
 * (.npy, torch storages) whose files record their own byte order.
 */
import { endianness } from 'node:os';

export const HOST_LITTLE_ENDIAN = endianness() === 'LE';

/** Reverses the bytes of each `size`-byte element of `bytes` in place. */
export function byteswap(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}
