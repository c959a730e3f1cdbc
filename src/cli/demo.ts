/**
 * `ssl-inv demo`: the invariance study on an embedded default (see src/demo/run-demo.ts). Nothing to
 * download: it generates its images and its random ResNet-18, evaluates all 18 synthetic transforms
 * and a real-world-style multi-view evaluation, and writes the HTML report.
 */
import { Command, Option } from 'commander';
import { runDemo } from '../demo/run-demo';
import { pythonFixed } from './python-format';
import { Arch } from '../nn/resnet-spec';
import { setNumThreads } from '../ops';
import { announceOnStderr, DEVICE_DEFAULT, deviceHelp, parseDevice, parseSeed, positiveInt } from './common';
import { stderrSink } from './sink';

interface DemoFlags {
  outDir: string;
  arch: Arch;
  objects: number;
  views: number;
  numImages: number;
  k: number;
  batchSize: number;
  seed: string;
  threads?: number;
  device?: string;
  quiet?: boolean;
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('the invariance study on a generated image set with a random ResNet (nothing to download)')
    .option('--out-dir <dir>', 'where images, model, results and the report go', 'ssl-inv-demo')
    .addOption(new Option('--arch <arch>', 'network of the random model').choices(['resnet18', 'resnet18w3', 'resnet50', 'resnet50w3']).default('resnet18'))
    .option('--objects <n>', 'objects (classes) in the image set', positiveInt('--objects'), 64)
    .option('--views <n>', 'views of each object', positiveInt('--views'), 12)
    .option('--num-images <n>', 'images sampled per synthetic transform', positiveInt('--num-images'), 8)
    .option('--k <n>', 'views per transform (the original uses 256)', positiveInt('--k'), 16)
    .option('--batch-size <n>', 'images per forward pass', positiveInt('--batch-size'), 64)
    .option('--seed <n>', 'seed of the image set', '0')
    .option('--threads <n>', 'CPU threads for the kernels', positiveInt('--threads'))
    .option('--device <device>', deviceHelp('on a GPU the defaults become --arch resnet50 --objects 192 ' +
      '(more images than ResNet-50 has feature dimensions)'), DEVICE_DEFAULT)
    .option('--quiet', 'no progress output')
    .action(async (f: DemoFlags, cmd: Command) => {
      const device = parseDevice(f.device, announceOnStderr(f.quiet));
      if (device !== 'cpu') {
        // The default on a GPU: ResNet-50, with enough images for its 2048-dimensional covariance.
        if (cmd.getOptionValueSource('arch') === 'default') f.arch = 'resnet50';
        if (cmd.getOptionValueSource('objects') === 'default') f.objects = 192;
      }
      if (f.threads !== undefined) setNumThreads(f.threads);
      const seed = parseSeed(f.seed);
      const s = await runDemo({
        outDir: f.outDir, arch: f.arch, objects: f.objects, views: f.views, imageSize: [96, 72], resize: 112, crop: 96,
        numImages: f.numImages, k: f.k, batchSize: f.batchSize, seed, device, sink: stderrSink(f.quiet ?? false),
      });
      const w = (x: string) => process.stdout.write(x);
      w(`demo: ${s.images} images of ${s.objects} objects; model random (${s.arch}, torchvision initialisation)\n\n`);
      w(`${'transform'.padEnd(14)}${'views'.padStart(6)}${'distance'.padStart(12)}${'similarity'.padStart(12)}\n`);
      for (const r of s.synthetic) {
        w(`${r.transform!.padEnd(14)}${String(r.rows.length).padStart(6)}${pythonFixed(r.summary.distance, 4).padStart(12)}${pythonFixed(r.summary.similarity, 4).padStart(12)}\n`);
      }
      const rw = s.realworld;
      w(`${'real-world'.padEnd(14)}${String(rw.rows.length).padStart(6)}${pythonFixed(rw.summary.distance, 4).padStart(12)}${pythonFixed(rw.summary.similarity, 4).padStart(12)}  (objects x ${f.views} views)\n\n`);
      w(`report: ${s.report}\n`);
      w(`time: images ${s.seconds.images.toFixed(1)} s, evaluation ${s.seconds.evaluation.toFixed(1)} s\n`);
    });
}
