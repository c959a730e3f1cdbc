/**
 * `ssl-inv features`: features of images under a checkpoint's ResNet trunk, written as a float32
 * .npy of shape [N, D] (D = 512, 1536, 2048 or 6144), rows in input order.
 *
 *   ssl-inv features --checkpoint FILE [--arch A] (--data DIR | --input-npy X.npy) --out F.npy
 *                    [--batch-size N] [--device cpu] [--precision fp32|tf32|bf16] [--activations float32|bfloat16]
 *                    [--resize 224] [--crop-size 224] [--threads N]
 *                    [--decode-workers N [--decode-memory-mb M] [--decode-timeout S]]
 *
 * --data reads an ImageFolder tree (class sub-folders, sorted as torchvision sorts them) through the
 * original's eval preprocessing; --input-npy takes an already-preprocessed float32 [N, 3, H, W].
 * The output is written atomically: an interrupted run leaves no partial file.
 */
import { Command, Option } from 'commander';
import { SslInvError } from '../errors';
import { listImageFolder } from '../data/image-folder';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/preprocess';
import { featuresOfArray, featuresOfFiles, FeatureChunk } from '../eval/features';
import { loadFeatureExtractor } from '../eval/model-loader';
import { readNpy, writeNpy } from '../io/npy';
import { NpyRowWriter } from '../io/npy-writer';
import { setNumThreads } from '../ops';
import { activationsOption, announceOnStderr, DEVICE_DEFAULT, deviceHelp, parseArithmetic, parseDevice, positiveInt, precisionOption } from './common';
import { createProgress } from './progress';
import { emitEvent, jsonOutput, writeNotice } from './stderr-output';
import { addDecodeOptions, DecodeFlags, openDecoder } from './decode-flags';

interface FeaturesOptions extends DecodeFlags {
  checkpoint: string;
  arch?: string;
  data?: string;
  inputNpy?: string;
  out: string;
  batchSize: number;
  device?: string;
  precision: string;
  activations: string;
  resize: number;
  cropSize: number;
  threads?: number;
  onError: 'error' | 'skip';
  labelsOut?: string;
  quiet?: boolean;
}

export function featuresCommand(): Command {
  return addDecodeOptions(new Command('features')
    .description('extract backbone features (fc removed) of images with a MoCo or torchvision checkpoint')
    .requiredOption('--checkpoint <file>', 'a MoCo checkpoint (.pth.tar) or a torchvision-style state dict (.pth)')
    .addOption(new Option('--arch <arch>', 'network; default: the checkpoint\'s arch field, else inferred from the weights, else resnet50')
      .choices(['resnet18', 'resnet18w3', 'resnet50', 'resnet50w3']))
    .option('--data <dir>', 'an ImageFolder tree of JPEG/PNG images')
    .option('--input-npy <file>', 'preprocessed float32 images [N, 3, H, W] (.npy)')
    .requiredOption('--out <file>', 'output .npy: float32 [N, D]')
    .option('--batch-size <n>', 'images per forward pass', positiveInt('--batch-size'), 32)
    .option('--device <device>', deviceHelp('the CUDA backend runs the networks'), DEVICE_DEFAULT)
    .addOption(precisionOption())
    .addOption(activationsOption())
    .option('--resize <n>', 'with --data: resize the shorter side to n (PIL bilinear)', positiveInt('--resize'), 224)
    .option('--crop-size <n>', 'with --data: center crop n x n', positiveInt('--crop-size'), 224)
    .option('--threads <n>', 'CPU threads for the kernels (default: all cores)', positiveInt('--threads'))
    .addOption(new Option('--on-error <policy>', 'with --data: what to do with an unreadable image (skip: leave it out and list it)').choices(['error', 'skip']).default('error'))
    .option('--labels-out <file>', 'with --data: also write the class index of each row (int64 .npy)')
    .option('--quiet', 'no progress output')
    .action(async (opts: FeaturesOptions) => {
      await runFeatures(opts);
    }));
}

async function runFeatures(opts: FeaturesOptions): Promise<void> {
  if ((opts.data === undefined) === (opts.inputNpy === undefined)) {
    throw new SslInvError('ERR_USAGE', 'give exactly one of --data DIR or --input-npy FILE');
  }
  const device = parseDevice(opts.device, announceOnStderr(opts.quiet));
  const { precision, activations } = parseArithmetic(opts, device);
  if (opts.threads !== undefined) setNumThreads(opts.threads);
  const started = Date.now();
  const decoder = openDecoder(opts, (line) => writeNotice(line));
  let model: Awaited<ReturnType<typeof loadFeatureExtractor>>;
  try {
    model = await loadFeatureExtractor(opts.checkpoint, { ...(opts.arch !== undefined ? { arch: opts.arch } : {}), device, precision, activations });
  } catch (e) {
    await decoder.close();
    throw e;
  }
  try {
    let rows: number;
    let chunks: AsyncGenerator<FeatureChunk>;
    let labels: Int32Array | undefined;
    if (opts.labelsOut !== undefined && opts.data === undefined) {
      throw new SslInvError('ERR_USAGE', '--labels-out needs --data (an ImageFolder has classes; an array does not)');
    }
    if (opts.inputNpy !== undefined) {
      const x = await readNpy(opts.inputNpy);
      if (x.dtype !== 'float32') {
        throw new SslInvError('ERR_DTYPE_MISMATCH', `expected float32 images, found ${x.dtype}`, { file: opts.inputNpy, field: 'descr' });
      }
      rows = x.shape[0] ?? 0;
      chunks = featuresOfArray(model.net, x.data as Float32Array, x.shape, opts.batchSize, opts.inputNpy);
    } else {
      const listing = await listImageFolder(opts.data!);
      rows = listing.samples.length;
      labels = Int32Array.from(listing.samples, (s) => s.classIndex);
      const transform = { resize: opts.resize, crop: opts.cropSize, mean: IMAGENET_MEAN, std: IMAGENET_STD };
      chunks = featuresOfFiles(model.net, listing.samples.map((s) => s.path), transform,
        { batchSize: opts.batchSize, onError: opts.onError, ...(decoder.decode ? { decode: decoder.decode } : {}) });
    }
    const progress = createProgress({ label: 'features', total: rows, unit: 'img', silent: opts.quiet ?? false });
    const writer = await NpyRowWriter.open(opts.out, 'float32', [model.net.featureDim], rows);
    const kept: number[] = [];
    const skipped: string[] = [];
    try {
      for await (const c of chunks) {
        await writer.append(c.features);
        kept.push(...c.index);
        for (const s of c.skipped) {
          skipped.push(s.file);
          if (jsonOutput()) emitEvent('skipped', { file: s.file, code: s.error.code, message: s.error.message });
          else process.stderr.write(`ssl-inv: skipped ${s.file}: ${s.error.code}: ${s.error.message}\n`);
        }
        progress.tick(c.rows + c.skipped.length);
      }
      await writer.commit({ rows: kept.length });
      if (opts.labelsOut !== undefined && labels) {
        const l = labels;
        await writeNpy(opts.labelsOut, { dtype: 'int64', shape: [kept.length], data: BigInt64Array.from(kept, (i) => BigInt(l[i]!)) });
      }
    } catch (e) {
      await writer.abort();
      throw e;
    }
    progress.done();
    rows = kept.length;
    const secs = (Date.now() - started) / 1000;
    const net = model.net;  // what the network was built with, as the table reports it
    process.stdout.write(
      `features  ${rows} x ${model.net.featureDim} float32 -> ${opts.out}\n` +
      `model     ${model.arch} (${model.archSource}), ${model.backbone.source === 'moco' ? 'MoCo encoder_q' : 'state dict'}\n` +
      `device    ${net.device}, ${net.precision}${net.activations === 'float32' ? '' : `, ${net.activations} activations`}\n` +
      `time      ${secs.toFixed(1)} s (${(rows / secs).toFixed(1)} img/s, model load included)\n` +
      (skipped.length ? `skipped   ${skipped.length} unreadable image(s), listed on stderr\n` : '') +
      (opts.labelsOut !== undefined ? `labels    ${rows} int64 class indices -> ${opts.labelsOut}\n` : ''));
  } finally {
    model.net.dispose();
    await decoder.close();
  }
}
