/**
 * `ssl-inv demo`: the main job on an embedded default (see src/demo/run-demo.ts). No data set or
 * checkpoint to download: it generates its images and a seeded random ResNet-18.
 */
import { Command, Option } from 'commander';
import { SslInvError } from '../errors';
import { runDemo } from '../demo/run-demo';
import { Arch } from '../nn/resnet-spec';
import { setNumThreads } from '../ops';
import { parseDevice, positiveInt } from './common';
import { createProgress, Progress } from './progress';

interface DemoFlags {
  outDir: string;
  arch: Arch;
  objects: number;
  views: number;
  batchSize: number;
  seed: string;
  threads?: number;
  device?: string;
  quiet?: boolean;
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('run the feature pipeline on a generated image set with a seeded random ResNet (nothing to download)')
    .option('--out-dir <dir>', 'where images, features and the summary go', 'ssl-inv-demo')
    .addOption(new Option('--arch <arch>', 'network').choices(['resnet18', 'resnet18w3', 'resnet50', 'resnet50w3']).default('resnet18'))
    .option('--objects <n>', 'objects (classes) in the image set', positiveInt('--objects'), 16)
    .option('--views <n>', 'views of each object', positiveInt('--views'), 8)
    .option('--batch-size <n>', 'images per forward pass', positiveInt('--batch-size'), 16)
    .option('--seed <n>', 'seed of the images and the network', '0')
    .option('--threads <n>', 'CPU threads for the kernels', positiveInt('--threads'))
    .option('--device <device>', 'cpu', 'cpu')
    .option('--quiet', 'no progress output')
    .action(async (f: DemoFlags) => {
      parseDevice(f.device);
      if (f.threads !== undefined) setNumThreads(f.threads);
      const seed = Number(f.seed);
      if (!Number.isSafeInteger(seed) || seed < 0) throw new SslInvError('ERR_USAGE', `--seed takes an integer >= 0, got '${f.seed}'`);
      let progress: Progress | undefined;
      let reported = 0;
      const summary = await runDemo({
        outDir: f.outDir, arch: f.arch, objects: f.objects, views: f.views, imageSize: [160, 120],
        resize: 224, crop: 224, batchSize: f.batchSize, seed,
        onProgress: (done, total) => {
          progress ??= createProgress({ label: 'features', total, unit: 'img', silent: f.quiet ?? false });
          progress.tick(done - reported);
          reported = done;
        },
      });
      progress?.done();
      const w = (s: string) => process.stdout.write(s);
      w(`demo: ${summary.images} images of ${summary.objects} objects, ${summary.arch} (random, seed ${summary.seed}), ${summary.featureDim}-d features\n`);
      w(`  centred cosine similarity, views of the same object     ${summary.sameObjectCosine.toFixed(4)}\n`);
      w(`  centred cosine similarity, views of different objects   ${summary.differentObjectCosine.toFixed(4)}\n`);
      w(`  time: images ${summary.seconds.images.toFixed(1)} s, features ${summary.seconds.features.toFixed(1)} s\n`);
      w(`  wrote ${summary.files.features}, ${summary.files.labels}, ${summary.files.summary}\n`);
    });
}
