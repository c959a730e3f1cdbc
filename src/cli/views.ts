/**
 * `ssl-inv views --transform T --k K IMAGE --out V.npy [--sheet S.png]`: what the model sees. Writes
 * the k normalised float32 views of one image (k x 3 x crop x crop, in the original's grid order)
 * and, with --sheet, a PNG contact sheet of them (views de-normalised, row by row in grid order).
 */
import { Command } from 'commander';
import { SslInvError } from '../errors';
import { decodeImageFile } from '../data/decode';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/preprocess';
import { writeFileAtomic } from '../io/atomic-write';
import { writeNpy } from '../io/npy';
import { defaultK, isSyntheticTransform, SYNTHETIC_TRANSFORMS, transformGrid } from '../transforms/grid';
import { makeViews } from '../transforms/views';
import { makeViewsOnDevice } from '../transforms/views-device';
import { announceOnStderr, DEVICE_DEFAULT, deviceHelp, parseDevice, parseSeed, positiveInt } from './common';
import { writeNotice } from './stderr-output';
import { addDecodeOptions, DecodeFlags, openDecoder } from './decode-flags';
import { sharpModule } from '../data/sharp-module';

/** A contact sheet of views [k, 3, s, s] normalised with mean/std: uint8 RGB, `cols` views per row. */
export function contactSheet(views: Float32Array, k: number, size: number, mean: readonly number[], std: readonly number[],
  gap = 2): { data: Uint8Array; width: number; height: number } {
  const cols = Math.ceil(Math.sqrt(k)), rows = Math.ceil(k / cols);
  const width = cols * size + (cols + 1) * gap, height = rows * size + (rows + 1) * gap;
  const data = new Uint8Array(width * height * 3).fill(255);
  const plane = size * size;
  for (let v = 0; v < k; v++) {
    const x0 = gap + (v % cols) * (size + gap), y0 = gap + Math.floor(v / cols) * (size + gap);
    for (let c = 0; c < 3; c++) {
      const base = (v * 3 + c) * plane;
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const u = (views[base + y * size + x]! * std[c]! + mean[c]!) * 255;
          data[((y0 + y) * width + x0 + x) * 3 + c] = u < 0 ? 0 : u > 255 ? 255 : Math.round(u);
        }
      }
    }
  }
  return { data, width, height };
}

interface Flags extends DecodeFlags {
  transform: string;
  k?: number;
  resize: number;
  cropSize: number;
  device: string;
  out: string;
  sheet?: string;
  seed: string;
}

export function viewsCommand(): Command {
  return addDecodeOptions(new Command('views')
    .description('write the k views of one image for a synthetic transform (what the model sees)')
    .argument('<image>', 'a JPEG or PNG file')
    .requiredOption('--transform <name>', SYNTHETIC_TRANSFORMS.join(', '))
    .option('--k <n>', 'number of views (default: the original\'s for the transform)', positiveInt('--k'))
    .option('--resize <n>', 'Resize of the shorter side', positiveInt('--resize'), 256)
    .option('--crop-size <n>', 'CenterCrop size', positiveInt('--crop-size'), 224)
    .option('--device <device>', deviceHelp('where the views are built (identical bits either way)'), DEVICE_DEFAULT)
    .requiredOption('--out <file>', 'output .npy: float32 [k, 3, crop, crop]')
    .option('--sheet <file>', 'also write a PNG contact sheet of the views')
    .option('--seed <n>', 'seed of the deform views', '0')
    .action(async (image: string, f: Flags) => {
      const device = parseDevice(f.device, announceOnStderr(false));
      if (!isSyntheticTransform(f.transform)) {
        throw new SslInvError('ERR_USAGE', `--transform '${f.transform}': expected one of ${SYNTHETIC_TRANSFORMS.join(', ')}`);
      }
      const seed = parseSeed(f.seed);
      const grid = transformGrid(f.transform, f.k ?? defaultK(f.transform), f.resize, f.cropSize);
      const decoder = openDecoder(f, (line) => writeNotice(line));
      let img;
      try {
        img = await decodeImageFile(image, decoder.decode);
      } finally {
        await decoder.close();
      }
      const vo = { mean: IMAGENET_MEAN, std: IMAGENET_STD, deformSeed: seed };
      const views = device === 'cpu' ? makeViews(img, grid, 0, grid.k, vo) : makeViewsOnDevice(img, grid, 0, grid.k, vo, device);
      const data = views.toFloat32Array();
      views.dispose();
      await writeNpy(f.out, { dtype: 'float32', shape: [grid.k, 3, grid.crop, grid.crop], data });
      process.stdout.write(`views     ${grid.k} x 3 x ${grid.crop} x ${grid.crop} float32 (${f.transform}: ${grid.labelName}) -> ${f.out}\n`);
      if (f.sheet !== undefined) {
        const s = contactSheet(data, grid.k, grid.crop, IMAGENET_MEAN, IMAGENET_STD);
        const png = await sharpModule()(Buffer.from(s.data.buffer, s.data.byteOffset, s.data.byteLength), { raw: { width: s.width, height: s.height, channels: 3 } })
          .png().toBuffer();
        await writeFileAtomic(f.sheet, png);
        process.stdout.write(`sheet     ${s.width} x ${s.height} PNG -> ${f.sheet}\n`);
      }
    }));
}
