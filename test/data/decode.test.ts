// Decoding against Pillow 9.4's Image.open(f).convert('RGB') (hashes in golden.json), and the refusals
// of RELIABILITY.md cases 28–31: truncated/corrupt JPEG and PNG, formats other than JPEG/PNG whatever
// the name, pixel bombs rejected from the header, CMYK/16-bit/gray/alpha/EXIF/ICC deterministic.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import t from 'tap';
import { decodeImageBuffer, decodeImageFile, readImageHeader, sniffFormat } from '../../src/data/decode';
import { SslInvError } from '../../src/errors';
import { fixturePath, golden, sha256 } from './fixtures';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-decode-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function writeTmp(name: string, data: Uint8Array | string): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, data);
  return p;
}

function jpegFixture(): Buffer {
  return fs.readFileSync(fixturePath('inputs/china_333x251_420.jpg'));
}

function crc32(buf: Uint8Array): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

function png(width: number, height: number, bitDepth: number, colorType: number, idat: Uint8Array): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr),
    pngChunk('IDAT', idat), pngChunk('IEND', new Uint8Array(0))]);
}

t.test('every fixture decodes to exactly the pixels Pillow gives', async (t) => {
  let identical = 0;
  for (const g of golden.images) {
    const img = await decodeImageFile(fixturePath(g.file));
    t.equal(img.width, g.width, `${g.file} width`);
    t.equal(img.height, g.height, `${g.file} height`);
    t.equal(img.channels, 3);
    t.equal(img.data.length, g.width * g.height * 3);
    t.equal(img.sourceMode, g.pilMode, `${g.file} mode`);
    const same = sha256(img.data) === g.decodeSha256;
    if (same) identical++;
    t.ok(same, `${g.file} (${g.note}) identical to Pillow's convert('RGB')`);
  }
  t.equal(identical, golden.images.length, `${identical}/${golden.images.length} fixtures identical`);
});

t.test('the special cases are the ones the fixtures claim to be', async (t) => {
  const byName = (n: string) => golden.images.find((g) => g.file.endsWith(n))!;
  const exif = byName('china_exif6_250x190.jpg');
  const img = await decodeImageFile(fixturePath(exif.file));
  t.same([img.width, img.height], [250, 190], 'EXIF orientation 6 is not applied');
  const meta = await sharp(fs.readFileSync(fixturePath(exif.file))).metadata();
  t.equal(meta.orientation, 6, 'the file does carry orientation 6');
  const icc = await sharp(fs.readFileSync(fixturePath(byName('rocket_adobergb_300x200.jpg').file))).metadata();
  t.ok(icc.hasProfile, 'the ICC fixture carries a profile (ignored: its pixels match Pillow)');
  const h = readImageHeader(fs.readFileSync(fixturePath(byName('rocket_cmyk_240x180.jpg').file)));
  t.same([h.mode, h.adobe], ['CMYK', true]);
  const h2 = readImageHeader(fs.readFileSync(fixturePath(byName('rocket_cmyk_noadobe_240x180.jpg').file)));
  t.same([h2.mode, h2.adobe], ['CMYK', false]);
  const g16 = byName('chelsea_gray16_80x60.png');
  const d16 = await decodeImageFile(fixturePath(g16.file));
  t.ok(d16.data.some((v) => v === 255) && d16.data.some((v) => v < 255), '16-bit gray clipped at 255 like Pillow');
});

t.test('truncated or corrupt JPEG: ERR_IMAGE_DECODE naming the file, never an image', async (t) => {
  const d = jpegFixture();
  const sos = d.indexOf(Buffer.from([0xff, 0xda]));
  const mid = Math.floor((sos + d.length) / 2);
  const variants: Record<string, Buffer> = {
    'no EOI': d.subarray(0, d.length - 2),
    '95%': d.subarray(0, Math.floor(d.length * 0.95)),
    '50%': d.subarray(0, Math.floor(d.length * 0.5)),
    'header only': d.subarray(0, sos + 20),
    'cut in the header': d.subarray(0, 300),
    'first bytes only': d.subarray(0, 3),
  };
  const early = Buffer.from(d);
  early[mid] = 0xff; early[mid + 1] = 0xd9;  // an EOI in the middle of the scan: Pillow returns a half-gray image
  variants['EOI inside the scan'] = early;
  const rst = Buffer.from(d);
  rst[mid] = 0xff; rst[mid + 1] = 0xd3;
  variants['stray RST marker'] = rst;
  variants['500 bytes of scan removed'] = Buffer.concat([d.subarray(0, mid), d.subarray(mid + 500)]);
  for (const [name, data] of Object.entries(variants)) {
    const file = writeTmp(`bad-${name.replace(/\W+/g, '_')}.jpg`, data);
    await t.rejects(decodeImageFile(file), { code: 'ERR_IMAGE_DECODE', file }, name);
  }
  // The strictness comes from failOn: without it the early EOI decodes into a partial image.
  const partial = await decodeImageBuffer(early, { failOn: 'none' });
  t.equal(partial.width, 333, 'failOn none would have accepted it');
});

t.test('truncated or corrupt PNG: ERR_IMAGE_DECODE', async (t) => {
  const d = fs.readFileSync(fixturePath('inputs/coffee_rgb_151x101.png'));
  const badCrc = Buffer.from(d);
  badCrc[d.indexOf('IDAT') + 30] ^= 0x40;
  for (const [name, data] of Object.entries({ '60%': d.subarray(0, Math.floor(d.length * 0.6)),
    'bad IDAT byte': badCrc, 'signature only': d.subarray(0, 8), 'IHDR cut': d.subarray(0, 20) })) {
    const file = writeTmp(`bad-${name.replace(/\W+/g, '_')}.png`, data);
    await t.rejects(decodeImageFile(file), { code: 'ERR_IMAGE_DECODE', file }, name);
  }
  // Complete image data without the IEND chunk: Pillow accepts it, and so do we (same pixels).
  const noEnd = await decodeImageBuffer(d.subarray(0, d.length - 12));
  t.equal(sha256(noEnd.data), golden.images.find((g) => g.file.endsWith('coffee_rgb_151x101.png'))!.decodeSha256);
});

t.test('only JPEG and PNG are decoded, whatever the file is called', async (t) => {
  const svg = '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>';
  const tiff = await sharp({ create: { width: 4, height: 4, channels: 3, background: 'red' } }).tiff().toBuffer();
  const webp = await sharp({ create: { width: 4, height: 4, channels: 3, background: 'red' } }).webp().toBuffer();
  const gif = await sharp({ create: { width: 4, height: 4, channels: 3, background: 'red' } }).gif().toBuffer();
  const cases: [string, Uint8Array | string, string][] = [
    ['svg.jpg', svg, 'svg/xml'], ['bare-svg.png', '<svg width="1" height="1"/>', 'svg/xml'],
    ['tiff.jpg', tiff, 'tiff'], ['webp.jpg', webp, 'webp'], ['gif.png', gif, 'gif'],
    ['bmp.jpg', Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]), 'bmp'], ['ppm.jpg', 'P6\n2 2\n255\n' + 'x'.repeat(12), 'pnm'],
    ['empty.jpg', '', 'unknown'], ['text.jpg', 'hello', 'unknown'],
  ];
  for (const [name, data, kind] of cases) {
    const file = writeTmp(name, data);
    t.equal(sniffFormat(typeof data === 'string' ? Buffer.from(data) : data), kind, `${name} sniffed as ${kind}`);
    await t.rejects(decodeImageFile(file), { code: 'ERR_IMAGE_FORMAT', file }, name);
  }
  // Second line: after the first decode, libvips itself refuses other loaders in this process.
  await decodeImageFile(fixturePath(golden.images[0].file));
  await t.rejects(sharp(Buffer.from(svg)).raw().toBuffer(), /unsupported image format/, 'libvips SVG loader blocked');
  await t.rejects(sharp(tiff).raw().toBuffer(), /unsupported image format/, 'libvips TIFF loader blocked');
});

t.test('JPEG variants Pillow cannot open either are ERR_IMAGE_FORMAT', async (t) => {
  const d = jpegFixture();
  const sof = d.indexOf(Buffer.from([0xff, 0xc0]));
  const twelve = Buffer.from(d);
  twelve[sof + 4] = 12;
  await t.rejects(decodeImageBuffer(twelve, { file: 'twelve.jpg' }), { code: 'ERR_IMAGE_FORMAT', file: 'twelve.jpg' });
  const lossless = Buffer.from(d);
  lossless[sof + 1] = 0xc3;
  await t.rejects(decodeImageBuffer(lossless), { code: 'ERR_IMAGE_FORMAT' });
  const two = Buffer.from(d);
  two[sof + 9] = 2;
  await t.rejects(decodeImageBuffer(two), { code: 'ERR_IMAGE_FORMAT' });
});

t.test('a small PNG declaring 20000x20000 is refused from its header, before decoding', async (t) => {
  // 1-bit gray, all zero rows: a real, valid stream of 50 MB raw deflated to a few tens of KB.
  const row = Buffer.alloc(1 + 2500);
  const raw = Buffer.alloc(row.length * 20000);
  const idat = zlib.deflateSync(raw, { level: 9 });
  const bomb = png(20000, 20000, 1, 0, idat);
  t.ok(bomb.length < 700 * 1024, `the file is small (${bomb.length} bytes)`);
  const file = writeTmp('bomb.png', bomb);
  const t0 = process.hrtime.bigint();
  await t.rejects(decodeImageFile(file), { code: 'ERR_IMAGE_TOO_LARGE', file, message: /20000x20000/ });
  t.ok(Number(process.hrtime.bigint() - t0) / 1e6 < 500, 'rejected without decoding');
  // A header lying about the size is also refused when the data is bogus.
  await t.rejects(decodeImageBuffer(png(20000, 20000, 8, 2, new Uint8Array(16))), { code: 'ERR_IMAGE_TOO_LARGE' });
  // The limit is an option.
  const small = fs.readFileSync(fixturePath('inputs/flower_100x80.jpg'));
  await t.rejects(decodeImageBuffer(small, { limitInputPixels: 7999 }), { code: 'ERR_IMAGE_TOO_LARGE' });
  t.equal((await decodeImageBuffer(small, { limitInputPixels: 8000 })).width, 100);
  // The default is Pillow 9.4's: Image.open raises DecompressionBombError above 178,956,970 pixels
  // (checked with /usr/bin/python3: a 178956971 x 1 header raises it, 178956970 x 1 opens and then
  // fails to load its missing data). Header-only PNGs: refused by size, or passed on and refused as
  // cut short.
  await t.rejects(decodeImageBuffer(png(178956971, 1, 8, 2, new Uint8Array(16))),
    { code: 'ERR_IMAGE_TOO_LARGE', message: /178956971 pixels, over the limit of 178956970 \(Pillow's DecompressionBombError limit/ });
  await t.rejects(decodeImageBuffer(png(178956970, 1, 8, 2, new Uint8Array(16))), { code: 'ERR_IMAGE_DECODE' });
  await t.rejects(decodeImageBuffer(png(13378, 13378, 8, 2, new Uint8Array(16))), { code: 'ERR_IMAGE_TOO_LARGE' }, '13378^2 = 178,970,884');
  await t.rejects(decodeImageBuffer(png(13377, 13377, 8, 2, new Uint8Array(16))), { code: 'ERR_IMAGE_DECODE' }, '13377^2 = 178,944,129');
});

t.test('file errors', async (t) => {
  const missing = path.join(tmp, 'missing.jpg');
  await t.rejects(decodeImageFile(missing), { code: 'ERR_FILE_NOT_FOUND', file: missing });
  const broken = path.join(tmp, 'broken-link.jpg');
  fs.symlinkSync(path.join(tmp, 'nowhere.jpg'), broken);
  await t.rejects(decodeImageFile(broken), { code: 'ERR_FILE_NOT_FOUND', file: broken });
  const dir = path.join(tmp, 'dir.jpg');
  fs.mkdirSync(dir);
  await t.rejects(decodeImageFile(dir), { code: 'ERR_FILE_READ', file: dir });
  const big = writeTmp('big.jpg', jpegFixture());
  await t.rejects(decodeImageFile(big, { maxFileBytes: 1000 }), { code: 'ERR_IMAGE_TOO_LARGE', file: big });
  await t.rejects(decodeImageFile(big, { failOn: 'sometimes' as never }), { code: 'ERR_INVALID_ARGUMENT' });
  const err = await decodeImageFile(missing).catch((e: unknown) => e);
  t.ok(err instanceof SslInvError && err.message.includes(missing), 'the message names the file');
});
