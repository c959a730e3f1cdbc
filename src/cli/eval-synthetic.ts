/**
 * `ssl-inv eval-synthetic --model default --transform grayscale DATA`: the original's
 * eval_synthetic_invariance.py with its flags. Prints, as the original,
 *   {model} on {transform}:
 *   \t distance X and similarity Y
 * and writes {model}_{layer}_{dataset}_{transform}_invariance.json / .csv into --results-dir.
 */
import { Command, Option } from 'commander';
import { SslInvError } from '../errors';
import { pythonFixed } from './python-format';
import { runSyntheticEvaluation } from '../eval/synthetic-run';
import { setNumThreads } from '../ops';
import { isSyntheticTransform, SYNTHETIC_TRANSFORMS, SyntheticTransform } from '../transforms/grid';
import * as path from 'node:path';
import { resultBaseName } from '../eval/results';
import { activationsOption, announceOnStderr, DEVICE_DEFAULT, deviceHelp, JSON_HELP, parseArithmetic, parseDevice, parseSeed, positiveInt, precisionOption, printJsonLine } from './common';
import { stderrSink } from './sink';
import { addDecodeOptions, checkDecodeFlags, DecodeFlags, openDecoder } from './decode-flags';

interface Flags extends DecodeFlags {
  dataset: string;
  split: string;
  model: string;
  transform: string;
  device: string;
  featureLayer: string;
  batchSize: number;
  numImages: number;
  resize: number;
  cropSize: number;
  k?: number;
  ckptDir: string;
  resultsDir: string;
  precision: string;
  activations: string;
  fuseMode: 'cat' | 'add' | 'mean';
  seed: string;
  threads?: number;
  quiet?: boolean;
  json?: boolean;
}

export function evalSyntheticCommand(): Command {
  return addDecodeOptions(new Command('eval-synthetic')
    .description('invariance of a model\'s features to the 18 synthetic transforms of the original study')
    .argument('<data>', 'data root: an ImageFolder tree at DATA/SPLIT (e.g. ../data/imagenet)')
    .option('--dataset <name>', 'data set name used in result file names', 'imagenet')
    .option('--split <split>', 'sub-folder of DATA to use', 'val')
    .option('--model <name>', 'checkpoint name in --ckpt-dir (default, ventral, dorsal, random, supervised, a+b+c)', 'default')
    .option('--transform <name>', `one of ${SYNTHETIC_TRANSFORMS.join(', ')}, or all`, 'rotation')
    .option('--device <device>', deviceHelp('the CUDA backend runs the networks'), DEVICE_DEFAULT)
    .addOption(new Option('--feature-layer <layer>', 'layer to take features from').choices(['backbone']).default('backbone'))
    .option('--batch-size <n>', 'images (statistics) and views (evaluation) per forward pass', positiveInt('--batch-size'), 256)
    .option('--num-images <n>', 'images sampled (with replacement, numpy seed 0) for the evaluation', positiveInt('--num-images'), 1000)
    .option('--resize <n>', 'Resize of the shorter side', positiveInt('--resize'), 256)
    .option('--crop-size <n>', 'CenterCrop size', positiveInt('--crop-size'), 224)
    .option('--k <n>', 'number of views (default: 2 for on/off transforms, 7 for posterize, 256 otherwise)', positiveInt('--k'))
    .option('--ckpt-dir <dir>', 'folder of {model}.pth.tar checkpoints', 'models/')
    .option('--results-dir <dir>', 'where statistics and results go', './results/')
    .addOption(precisionOption())
    .addOption(activationsOption())
    .addOption(new Option('--fuse-mode <mode>', 'how a+b+c models combine features').choices(['cat', 'add', 'mean']).default('cat'))
    .option('--seed <n>', 'numpy seed of the image sampling (the original uses 0)', '0')
    .option('--threads <n>', 'CPU threads', positiveInt('--threads'))
    .option('--quiet', 'no progress output')
    .option('--json', JSON_HELP)
    .action(async (data: string, f: Flags) => {
      const device = parseDevice(f.device, announceOnStderr(f.quiet));
      checkDecodeFlags(f);
      const { precision, activations } = parseArithmetic(f, device);
      if (f.threads !== undefined) setNumThreads(f.threads);
      const seed = parseSeed(f.seed);
      let transforms: SyntheticTransform[];
      if (f.transform === 'all') transforms = [...SYNTHETIC_TRANSFORMS];
      else if (isSyntheticTransform(f.transform)) transforms = [f.transform];
      else throw new SslInvError('ERR_USAGE', `--transform '${f.transform}': expected one of ${SYNTHETIC_TRANSFORMS.join(', ')}, or all`);
      if (f.k !== undefined && transforms.length > 1) throw new SslInvError('ERR_USAGE', '--k applies to one transform; leave it out with --transform all');
      const sink = stderrSink(f.quiet ?? false);
      const decoder = openDecoder(f, (line) => sink.notice(line));
      try {
        await runSyntheticEvaluation({
          data, dataset: f.dataset, split: f.split, model: f.model, transforms, ...(f.k !== undefined ? { k: f.k } : {}),
          batchSize: f.batchSize, numImages: f.numImages, resize: f.resize, crop: f.cropSize, ckptDir: f.ckptDir,
          resultsDir: f.resultsDir, fuseMode: f.fuseMode, featureLayer: f.featureLayer, seed, device, precision, activations,
          sink, ...(decoder.decode ? { decode: decoder.decode } : {}),
          onResult: (r) => {
            if (f.json) {
              printJsonLine({ kind: 'synthetic', model: f.model, dataset: f.dataset, transform: r.transform, distance: r.summary.distance,
                similarity: r.summary.similarity, file: path.join(f.resultsDir, `${resultBaseName(r)}.json`) });
            } else {
              process.stdout.write(`${f.model} on ${r.transform}:\n\t distance ${pythonFixed(r.summary.distance, 6)} and similarity ${pythonFixed(r.summary.similarity, 6)}\n`);
            }
          },
        });
      } finally {
        await decoder.close();
      }
    }));
}
