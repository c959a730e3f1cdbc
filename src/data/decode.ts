/**
 * Image decoding: JPEG and PNG files to RGB uint8 HWC pixels, as torchvision's default loader
 * (`Image.open(f).convert('RGB')` with Pillow 9) gives them.
 *
 * Decoding is done by sharp (libvips with libjpeg-turbo/mozjpeg and libpng); this module decides what
 * sharp is asked for and converts its output the way Pillow does:
 *   - JPEG, 1 component (L): gray replicated to R, G, B.
 *   - JPEG, 3 components: libjpeg's RGB. Identical to Pillow's decode on every fixture (same IDCT,
 *     same fancy upsampling), for 4:4:4, 4:2:2, 4:2:0, odd sizes and progressive files.
 *   - JPEG, 4 components (CMYK/YCCK): the CMYK values with Adobe's inverted polarity, which Pillow
 *     assumes for every CMYK JPEG, and which libvips 8.18 (sharp 0.35) also applies with or without
 *     the Adobe marker (the fixture without the marker guards this), then Pillow's cmyk2rgb:
 *     nk = 255 - K, R = clip(nk - (C * nk) / 255) with Pillow's rounding of the division. No CMYK
 *     profile is applied (sharp would otherwise convert through its default CMYK profile).
 *   - PNG gray (1/2/4/8-bit) and gray+alpha: gray replicated, alpha dropped.
 *   - PNG RGB, RGBA and palette (any depth): RGB, palette looked up, alpha dropped — never
 *     composited over a background.
 *   - 16-bit PNG: RGB, RGBA and gray+alpha keep the high byte (v >> 8), as Pillow's unpackers do;
 *     16-bit gray is opened by Pillow as mode I and clipped to 0..255 by convert('RGB') (so most
 *     16-bit gray images come out nearly white) — reproduced, as torchvision does it.
 *   - No EXIF orientation is applied and embedded ICC profiles are ignored (sharp's `ignoreIcc`;
 *     Pillow ignores them too): pixels are the file's own values.
 *
 * Safety (docs RELIABILITY.md §4 and cases 28–31):
 *   - Only JPEG and PNG are decoded. The file's first bytes decide (not its name): anything else,
 *     e.g. an SVG or TIFF named .jpg, is refused with ERR_IMAGE_FORMAT before sharp sees it. In
 *     addition, the first decode blocks every libvips loader except the JPEG and PNG ones for the
 *     whole process (`sharp.block`), see `restrictImageLoaders`.
 *   - The header is parsed here first: width x height above `limitInputPixels` is ERR_IMAGE_TOO_LARGE
 *     before any pixel is decoded or allocated; the limit is also passed to sharp. The default is
 *     Pillow's: Image.open raises DecompressionBombError above 2 * MAX_IMAGE_PIXELS = 178,956,970
 *     pixels, so the original refuses exactly the images refused here (sharp's own default,
 *     268,402,689, would decode some it cannot).
 *   - sharp runs with `failOn: 'warning'` by default (its strictest level): truncated or corrupt
 *     data is ERR_IMAGE_DECODE naming the file, never a gray, black or partial image. Pillow also
 *     raises on truncated files, but silently decodes some corrupt-but-complete JPEGs (libjpeg
 *     warnings); those are refused here. `failOn: 'error'` accepts more of them.
 *   - 12-bit, lossless and hierarchical JPEGs, and JPEGs with 2 or more than 4 components, are
 *     ERR_IMAGE_FORMAT (Pillow cannot open them either).
 */
import { promises as fsp } from 'node:fs';
import type { OutputInfo } from 'sharp';
import { SslInvError } from '../errors';
import { sharpModule } from './sharp-module';

/** An RGB image, uint8, HWC (row-major, 3 bytes per pixel). */
export interface DecodedImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
  /** The container format that was decoded. */
  format: 'jpeg' | 'png';
  /** Pillow's mode for the file before convert('RGB'): 'RGB', 'L', 'CMYK', 'P', 'RGBA', 'LA', 'I', '1'. */
  sourceMode: string;
}

export type FailOn = 'none' | 'truncated' | 'error' | 'warning';

export interface DecodeOptions {
  /** Largest width * height accepted, checked from the header before decoding; false: no limit. */
  limitInputPixels?: number | false;
  /** sharp's failOn level; default 'warning' (the strictest). */
  failOn?: FailOn;
  /** Largest file read, in bytes (default 1 GiB). */
  maxFileBytes?: number;
  /** Abort a decode taking longer than this (sharp's timeout); 0 or absent: none. */
  timeoutSeconds?: number;
  /**
   * Where decodeImageFile decodes: absent, in this process; a DecodePool (decode-pool.ts), in its
   * memory-capped processes. The pixels are the same either way.
   */
  decoder?: ImageDecoder;
}

/** Something that decodes files as decodeImageFile does, elsewhere (DecodePool: in other processes). */
export interface ImageDecoder {
  decodeFile(file: string, opts?: DecodeOptions): Promise<DecodedImage>;
}

/** Pillow 9's DecompressionBombError threshold, 2 * Image.MAX_IMAGE_PIXELS (a larger image is refused). */
export const DEFAULT_PIXEL_LIMIT = 178956970;
export const DEFAULT_MAX_FILE_BYTES = 1 << 30;

/** What the first bytes of a file say it is; only 'jpeg' and 'png' are decoded. */
export type SniffedFormat = 'jpeg' | 'png' | 'gif' | 'webp' | 'tiff' | 'bmp' | 'svg/xml' | 'pnm' | 'heif/avif' |
  'jpeg2000' | 'jpeg-xl' | 'pdf' | 'unknown';

export interface ImageHeader {
  format: 'jpeg' | 'png';
  width: number;
  height: number;
  /** Pillow's mode of the file. */
  mode: string;
  /** JPEG: number of components; PNG: colour type. */
  components: number;
  /** Bits per sample (JPEG precision, PNG bit depth). */
  bitDepth: number;
  /** PNG colour type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA); -1 for JPEG. */
  pngColorType: number;
  /** JPEG: an APP14 "Adobe" segment is present (informational). */
  adobe: boolean;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(buf: Uint8Array, bytes: readonly number[], offset = 0): boolean {
  if (buf.length < offset + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (buf[offset + i] !== bytes[i]) return false;
  return true;
}

function ascii(buf: Uint8Array, start: number, end: number): string {
  const s = Math.min(start, buf.length), e = Math.max(s, Math.min(end, buf.length));
  return Buffer.from(buf.buffer, buf.byteOffset + s, e - s).toString('latin1');
}

/** Names the format from the first bytes (magic numbers), whatever the file is called. */
export function sniffFormat(buf: Uint8Array): SniffedFormat {
  if (startsWith(buf, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(buf, PNG_SIGNATURE)) return 'png';
  if (ascii(buf, 0, 6) === 'GIF87a' || ascii(buf, 0, 6) === 'GIF89a') return 'gif';
  if (ascii(buf, 0, 4) === 'RIFF' && ascii(buf, 8, 12) === 'WEBP') return 'webp';
  if (startsWith(buf, [0x49, 0x49, 0x2a, 0x00]) || startsWith(buf, [0x4d, 0x4d, 0x00, 0x2a]) ||
    startsWith(buf, [0x49, 0x49, 0x2b, 0x00]) || startsWith(buf, [0x4d, 0x4d, 0x00, 0x2b])) return 'tiff';
  if (ascii(buf, 0, 2) === 'BM') return 'bmp';
  if (ascii(buf, 4, 8) === 'ftyp') return 'heif/avif';
  if (startsWith(buf, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20]) || startsWith(buf, [0xff, 0x4f, 0xff, 0x51])) {
    return 'jpeg2000';
  }
  if (startsWith(buf, [0xff, 0x0a]) || startsWith(buf, [0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20])) return 'jpeg-xl';
  if (ascii(buf, 0, 5) === '%PDF-') return 'pdf';
  if (/^P[1-7]\s/.test(ascii(buf, 0, 3))) return 'pnm';
  const head = ascii(buf, 0, 512).replace(/^\uFEFF/, '').replace(/^[\s\u00ef\u00bb\u00bf]+/, '').toLowerCase();
  if (head.startsWith('<?xml') || head.startsWith('<!doctype svg') || head.includes('<svg')) {
    return 'svg/xml';
  }
  return 'unknown';
}

function corrupt(file: string | undefined, message: string): SslInvError {
  return new SslInvError('ERR_IMAGE_DECODE', message, { file });
}

function parseJpegHeader(buf: Uint8Array, file?: string): ImageHeader {
  let i = 2;
  let adobe = false;
  let sof: { marker: number; precision: number; height: number; width: number; components: number } | undefined;
  for (;;) {
    if (i >= buf.length) throw corrupt(file, 'JPEG ends inside its header (truncated file)');
    if (buf[i] !== 0xff) throw corrupt(file, `corrupt JPEG header: no marker at byte ${i}`);
    while (i < buf.length && buf[i] === 0xff) i++;  // fill bytes
    if (i >= buf.length) throw corrupt(file, 'JPEG ends inside its header (truncated file)');
    const marker = buf[i++];
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01 || marker === 0xd8) continue;  // no length
    if (marker === 0xd9) throw corrupt(file, 'JPEG ends (EOI) before any image data');
    if (i + 2 > buf.length) throw corrupt(file, 'JPEG ends inside its header (truncated file)');
    const length = (buf[i] << 8) | buf[i + 1];
    if (length < 2 || i + length > buf.length) {
      throw corrupt(file, `JPEG segment 0xFF${marker.toString(16).toUpperCase()} runs past the end of the file`);
    }
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (length < 8) throw corrupt(file, 'corrupt JPEG frame header');
      sof = {
        marker,
        precision: buf[i + 2],
        height: (buf[i + 3] << 8) | buf[i + 4],
        width: (buf[i + 5] << 8) | buf[i + 6],
        components: buf[i + 7],
      };
    } else if (marker === 0xee && length >= 7 && ascii(buf, i + 2, i + 7) === 'Adobe') {
      adobe = true;
    } else if (marker === 0xda) {
      break;
    }
    i += length;
  }
  if (!sof) throw corrupt(file, 'JPEG has no frame header before its scan data');
  const supported = [0xc0, 0xc1, 0xc2, 0xc9, 0xca];
  if (!supported.includes(sof.marker)) {
    const kind = sof.marker === 0xc3 || sof.marker === 0xcb ? 'lossless' : 'hierarchical';
    throw new SslInvError('ERR_IMAGE_FORMAT', `${kind} JPEG (SOF 0xFF${sof.marker.toString(16).toUpperCase()}) ` +
      'is not supported (Pillow cannot open it either)', { file });
  }
  if (sof.precision !== 8) {
    throw new SslInvError('ERR_IMAGE_FORMAT', `${sof.precision}-bit JPEG is not supported (Pillow refuses it too)`,
      { file });
  }
  if (sof.components !== 1 && sof.components !== 3 && sof.components !== 4) {
    throw new SslInvError('ERR_IMAGE_FORMAT', `JPEG with ${sof.components} components is not supported ` +
      '(Pillow opens 1, 3 or 4)', { file });
  }
  if (sof.width < 1 || sof.height < 1) {
    throw corrupt(file,
      `JPEG declares a ${sof.width}x${sof.height} image (a height set later by DNL is not supported)`);
  }
  return {
    format: 'jpeg', width: sof.width, height: sof.height, components: sof.components, bitDepth: 8,
    pngColorType: -1, adobe, mode: sof.components === 1 ? 'L' : sof.components === 3 ? 'RGB' : 'CMYK',
  };
}

const PNG_DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16],
};

function parsePngHeader(buf: Uint8Array, file?: string): ImageHeader {
  if (buf.length < 33) throw corrupt(file, 'PNG ends inside its header (truncated file)');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (dv.getUint32(8) !== 13 || ascii(buf, 12, 16) !== 'IHDR') {
    throw corrupt(file, 'PNG does not start with an IHDR chunk');
  }
  const width = dv.getUint32(16), height = dv.getUint32(20);
  const bitDepth = buf[24], colorType = buf[25], interlace = buf[28];
  if (width < 1 || height < 1 || width > 0x7fffffff || height > 0x7fffffff) {
    throw corrupt(file, `PNG declares an invalid size ${width}x${height}`);
  }
  if (!PNG_DEPTHS[colorType]?.includes(bitDepth) || buf[26] !== 0 || buf[27] !== 0 || interlace > 1) {
    throw corrupt(file, `PNG declares an invalid colour type ${colorType} / bit depth ${bitDepth}`);
  }
  let mode: string;
  switch (colorType) {
    case 0: mode = bitDepth === 1 ? '1' : bitDepth === 16 ? 'I' : 'L'; break;
    case 2: mode = 'RGB'; break;
    case 3: mode = 'P'; break;
    case 4: mode = bitDepth === 16 ? 'RGBA' : 'LA'; break;
    default: mode = 'RGBA';
  }
  return { format: 'png', width, height, components: colorType, bitDepth, pngColorType: colorType, adobe: false, mode };
}

/**
 * Reads the header of a JPEG or PNG: size, Pillow mode and what decoding needs. Anything that is not
 * JPEG or PNG by its first bytes is ERR_IMAGE_FORMAT; a header that is cut short or invalid is
 * ERR_IMAGE_DECODE.
 */
export function readImageHeader(buf: Uint8Array, file?: string): ImageHeader {
  const format = sniffFormat(buf);
  if (format === 'jpeg') return parseJpegHeader(buf, file);
  if (format === 'png') return parsePngHeader(buf, file);
  throw new SslInvError('ERR_IMAGE_FORMAT', (format === 'unknown' ? 'not an image format this package decodes' :
    `the content is ${format}`) + '; only JPEG and PNG are decoded (the file name does not matter)', { file });
}

let loadersRestricted = false;

/**
 * Blocks every libvips loader except JPEG and PNG (from buffers, files and streams), for the whole
 * process (sharp.block is global). Called by the first decode; decoding already refuses other formats by their magic
 * bytes, this is the second line (RELIABILITY.md §4). Other code in the same process can no longer
 * make sharp read other formats afterwards.
 */
export function restrictImageLoaders(): void {
  if (loadersRestricted) return;
  sharpModule().block({ operation: ['VipsForeignLoad'] });
  const allowed = ['Jpeg', 'Png', 'Spng'].flatMap((f) =>
    ['Buffer', 'File', 'Source'].map((s) => `VipsForeignLoad${f}${s}`));
  sharpModule().unblock({ operation: allowed });
  loadersRestricted = true;
}

// How sharp is asked for pixels, and how they become Pillow's RGB.
type Plan = 'rgb' | 'gray' | 'cmyk' | 'gray16clip' | 'gray16' | 'rgb16';

function planFor(h: ImageHeader): Plan {
  if (h.format === 'jpeg') return h.components === 1 ? 'gray' : h.components === 3 ? 'rgb' : 'cmyk';
  const ct = h.pngColorType;
  if (h.bitDepth === 16) return ct === 0 ? 'gray16clip' : ct === 4 ? 'gray16' : 'rgb16';
  return ct === 0 || ct === 4 ? 'gray' : 'rgb';
}

/** Pillow's MULDIV255(a, b): (a * b + 128) with its shift-based division by 255. */
function mulDiv255(a: number, b: number): number {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

function clip8(v: number): number {
  return v <= 0 ? 0 : v < 256 ? v : 255;
}

function toRgb(plan: Plan, raw: Uint8Array, channels: number, n: number): Uint8Array {
  if (plan === 'rgb' && channels === 3) return raw;
  const out = new Uint8Array(n * 3);
  if (plan === 'rgb') {
    for (let p = 0, s = 0, d = 0; p < n; p++, s += channels, d += 3) {
      out[d] = raw[s]; out[d + 1] = raw[s + 1]; out[d + 2] = raw[s + 2];
    }
  } else if (plan === 'gray') {
    for (let p = 0, s = 0, d = 0; p < n; p++, s += channels, d += 3) out[d] = out[d + 1] = out[d + 2] = raw[s];
  } else if (plan === 'cmyk') {
    for (let p = 0, s = 0, d = 0; p < n; p++, s += 4, d += 3) {
      const nk = 255 - raw[s + 3];
      out[d] = clip8(nk - mulDiv255(raw[s], nk));
      out[d + 1] = clip8(nk - mulDiv255(raw[s + 1], nk));
      out[d + 2] = clip8(nk - mulDiv255(raw[s + 2], nk));
    }
  } else {
    const u16 = new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength >> 1);
    if (plan === 'gray16clip') {
      for (let p = 0, s = 0, d = 0; p < n; p++, s += channels, d += 3) {
        const v = u16[s];
        out[d] = out[d + 1] = out[d + 2] = v > 255 ? 255 : v;
      }
    } else if (plan === 'gray16') {
      for (let p = 0, s = 0, d = 0; p < n; p++, s += channels, d += 3) out[d] = out[d + 1] = out[d + 2] = u16[s] >> 8;
    } else {
      for (let p = 0, s = 0, d = 0; p < n; p++, s += channels, d += 3) {
        out[d] = u16[s] >> 8; out[d + 1] = u16[s + 1] >> 8; out[d + 2] = u16[s + 2] >> 8;
      }
    }
  }
  return out;
}

const EXPECTED_CHANNELS: Record<Plan, number[]> = {
  rgb: [3, 4], gray: [1, 2], cmyk: [4], gray16clip: [1, 2], gray16: [2], rgb16: [3, 4],
};

function classifySharpError(e: unknown, file: string | undefined): SslInvError {
  const message = e instanceof Error ? e.message : String(e);
  if (/pixel limit/i.test(message)) return new SslInvError('ERR_IMAGE_TOO_LARGE', message, { file, cause: e });
  if (/unsupported image format/i.test(message)) {
    return new SslInvError('ERR_IMAGE_FORMAT', message, { file, cause: e });
  }
  return new SslInvError('ERR_IMAGE_DECODE', `cannot decode: ${message}`, { file, cause: e });
}

function checkOptions(opts: DecodeOptions): { limit: number | false; failOn: FailOn } {
  const limit = opts.limitInputPixels ?? DEFAULT_PIXEL_LIMIT;
  if (limit !== false && !(Number.isSafeInteger(limit) && limit > 0)) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', 'limitInputPixels: expected a positive integer or false');
  }
  const failOn = opts.failOn ?? 'warning';
  if (!['none', 'truncated', 'error', 'warning'].includes(failOn)) {
    throw new SslInvError('ERR_INVALID_ARGUMENT', `failOn: expected none, truncated, error or warning, got ${failOn}`);
  }
  return { limit, failOn };
}

/** Decodes a JPEG or PNG held in memory. `file` only names the source in errors. */
export async function decodeImageBuffer(buf: Uint8Array,
  opts: DecodeOptions & { file?: string } = {}): Promise<DecodedImage> {
  const file = opts.file;
  const { limit, failOn } = checkOptions(opts);
  const header = readImageHeader(buf, file);
  if (limit !== false && header.width * header.height > limit) {
    throw new SslInvError('ERR_IMAGE_TOO_LARGE', `the header declares ${header.width}x${header.height} = ` +
      `${header.width * header.height} pixels, over the limit of ${limit}` +
      (limit === DEFAULT_PIXEL_LIMIT ? ' (Pillow\'s DecompressionBombError limit, which the original hits too)' : ' (option limitInputPixels)'), { file });
  }
  restrictImageLoaders();
  const plan = planFor(header);
  let s = sharpModule()(buf, { failOn, limitInputPixels: limit === false ? false : limit, ignoreIcc: true, autoOrient: false,
    sequentialRead: true });
  if (opts.timeoutSeconds) s = s.timeout({ seconds: opts.timeoutSeconds });
  switch (plan) {
    case 'cmyk': s = s.pipelineColourspace('cmyk').toColourspace('cmyk').raw(); break;
    case 'gray': s = s.toColourspace('b-w').raw(); break;
    case 'gray16clip': case 'gray16': s = s.toColourspace('grey16').raw({ depth: 'ushort' }); break;
    case 'rgb16': s = s.toColourspace('rgb16').raw({ depth: 'ushort' }); break;
    default: s = s.toColourspace('srgb').raw();
  }
  let data: Buffer, info: OutputInfo;
  try {
    ({ data, info } = await s.toBuffer({ resolveWithObject: true }));
  } catch (e) {
    throw classifySharpError(e, file);
  }
  const bytesPerSample = plan.endsWith('16') || plan === 'gray16clip' ? 2 : 1;
  const n = header.width * header.height;
  if (info.width !== header.width || info.height !== header.height ||
    !EXPECTED_CHANNELS[plan].includes(info.channels) || data.length !== n * info.channels * bytesPerSample) {
    throw corrupt(file, `the decoder returned ${info.width}x${info.height}x${info.channels} for a ` +
      `${header.width}x${header.height} ${header.mode} ${header.format.toUpperCase()}`);
  }
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return {
    data: toRgb(plan, raw, info.channels, n),
    width: header.width,
    height: header.height,
    channels: 3,
    format: header.format,
    sourceMode: header.mode,
  };
}

/** Reads and decodes a JPEG or PNG file (see the module comment for what is accepted). */
export async function decodeImageFile(file: string, opts: DecodeOptions = {}): Promise<DecodedImage> {
  if (opts.decoder) {
    const { decoder, ...rest } = opts;
    return decoder.decodeFile(file, rest);
  }
  const maxBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  let buf: Buffer;
  try {
    const st = await fsp.stat(file);
    if (!st.isFile()) throw new SslInvError('ERR_FILE_READ', 'not a regular file', { file });
    if (st.size > maxBytes) {
      throw new SslInvError('ERR_IMAGE_TOO_LARGE', `the file has ${st.size} bytes, over the limit of ${maxBytes} ` +
        '(option maxFileBytes)', { file });
    }
    buf = await fsp.readFile(file);
  } catch (e) {
    if (e instanceof SslInvError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new SslInvError('ERR_FILE_NOT_FOUND', 'no such file (or a broken symbolic link)', { file, cause: e });
    }
    throw new SslInvError('ERR_FILE_READ', `cannot read: ${(e as Error).message}`, { file, cause: e });
  }
  return decodeImageBuffer(buf, { ...opts, file });
}
