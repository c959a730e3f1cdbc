/**
 * `ssl-inv eval-downstream --model default+ventral+dorsal --dataset 300w`: the original's
 * eval_downstream.py. Features of the data set's trainval and test splits, the original's search of
 * C over logspace(-6 + 2c, 5 + 2c, 45) with K-fold cross-validation (seeded), the refit and the test
 * score, printed as the original prints it (`{model} on {dataset}: {score:.2f}`); JSON with the
 * chosen hyper-parameter and every CV score goes to {results-dir}/{model}_{dataset}_downstream.json.
 */
import { Command, Option } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/preprocess';
import { DOWNSTREAM_DATASETS, readDownstreamDataset } from '../datasets';
import { runDownstream } from '../eval/downstream-run';
import { pythonFixed } from './python-format';
import { loadNamedModel } from '../eval/models';
import { downstreamCsv } from '../eval/probe-csv';
import { versions } from '../eval/results';
import { writeFileAtomic } from '../io/atomic-write';
import { setNumThreads } from '../ops';
import { activationsOption, announceOnStderr, DEVICE_DEFAULT, deviceHelp, JSON_HELP, parseArithmetic, parseDevice, parseSeed, positiveInt, precisionOption, printJsonLine } from './common';
import { stderrSink } from './sink';
import { addDecodeOptions, checkDecodeFlags, DecodeFlags, OpenedDecoder, openDecoder } from './decode-flags';

interface Flags extends DecodeFlags {
  model: string;
  fuseMode: 'cat' | 'add' | 'mean';
  dataset: string;
  cvFolds: number;
  device: string;
  precision: string;
  activations: string;
  featureLayer: string;
  batchSize: number;
  resize: number;
  cropSize: number;
  ckptDir: string;
  resultsDir: string;
  dataRoot: string;
  quick?: boolean;
  verifyChecksums: boolean;
  seed: string;
  threads?: number;
  quiet?: boolean;
  json?: boolean;
}

export function evalDownstreamCommand(): Command {
  return addDecodeOptions(new Command('eval-downstream')
    .description('transfer: linear probes of a model\'s features on the original\'s 6 downstream data sets')
    .option('--model <name>', 'checkpoint name in --ckpt-dir (or a+b+c)', 'default')
    .addOption(new Option('--fuse-mode <mode>', 'how a+b+c models combine features').choices(['cat', 'add', 'mean']).default('cat'))
    .option('--dataset <name>', Object.keys(DOWNSTREAM_DATASETS).join(', '), 'cifar10')
    .option('--cv-folds <n>', 'cross-validation folds', positiveInt('--cv-folds'), 5)
    .option('--device <device>', deviceHelp('the network and the probe\'s float64 GEMMs run there'), DEVICE_DEFAULT)
    .addOption(precisionOption())
    .addOption(activationsOption())
    .addOption(new Option('--feature-layer <layer>', 'layer to take features from').choices(['backbone']).default('backbone'))
    .option('--batch-size <n>', 'images per forward pass', positiveInt('--batch-size'), 64)
    .option('--resize <n>', 'Resize of the shorter side', positiveInt('--resize'), 224)
    .option('--crop-size <n>', 'CenterCrop size', positiveInt('--crop-size'), 224)
    .option('--ckpt-dir <dir>', 'folder of {model}.pth.tar checkpoints', './models/')
    .option('--results-dir <dir>', 'where results go', './results')
    .option('--data-root <dir>', 'folder holding the data sets', '../data/')
    .option('--quick', 'a seeded subset of 100 batches per split (the original\'s debug mode)')
    .option('--no-verify-checksums', 'read CIFAR-10 / CelebA files whose MD5 differs from the published one')
    .option('--seed <n>', 'seed of the K-fold shuffle (the original\'s is unseeded)', '0')
    .option('--threads <n>', 'CPU threads', positiveInt('--threads'))
    .option('--quiet', 'no progress output')
    .option('--json', JSON_HELP)
    .action(async (f: Flags) => {
      const device = parseDevice(f.device, announceOnStderr(f.quiet));
      checkDecodeFlags(f);
      const { precision, activations } = parseArithmetic(f, device);
      if (f.threads !== undefined) setNumThreads(f.threads);
      const seed = parseSeed(f.seed);
      const name = f.dataset.toLowerCase();
      const sink = stderrSink(f.quiet ?? false);
      const started = Date.now();
      const dataset = await readDownstreamDataset(name, f.dataRoot, { cropSize: f.cropSize, verifyChecksums: f.verifyChecksums });
      const model = await loadNamedModel(f.model, { ckptDir: f.ckptDir, fuseMode: f.fuseMode, device, precision, activations, onNotice: (m) => sink.notice(m) });
      let decoder: OpenedDecoder | undefined;
      try {
        decoder = openDecoder(f, (line) => sink.notice(line));
        const run = await runDownstream({
          model, modelName: f.model, dataset, transform: { resize: f.resize, crop: f.cropSize, mean: IMAGENET_MEAN, std: IMAGENET_STD },
          batchSize: f.batchSize, folds: f.cvFolds, seed, quick: f.quick ?? false, sink, probeDevice: device,
          ...(decoder.decode ? { decode: decoder.decode } : {}),
        });
        const { model: _fitted, ...probe } = run.probe;
        const out = path.join(f.resultsDir, `${f.model}_${name}_downstream.json`);
        fs.mkdirSync(f.resultsDir, { recursive: true });
        await writeFileAtomic(out, Buffer.from(`${JSON.stringify({
          format: 'ssl-inv-downstream/1', model: f.model, fuseMode: f.fuseMode, dataset: name, task: dataset.task, metric: dataset.metric,
          models: model.provenance,
          config: { resize: f.resize, crop: f.cropSize, batchSize: f.batchSize, folds: f.cvFolds, quick: f.quick ?? false, dataRoot: f.dataRoot },
          rows: { trainval: run.trainvalRows, test: run.testRows }, seed, device, precision, activations, versions: versions(device), probe,
          created: new Date().toISOString(), seconds: (Date.now() - started) / 1000,
        }, null, 1)}\n`));
        await writeFileAtomic(out.replace(/\.json$/, '.csv'), Buffer.from(downstreamCsv(f.model, name, dataset.metric, run.probe)));
        sink.notice(`best C ${run.probe.chosenC} (mean CV score ${run.probe.meanCvScores[run.probe.bestIndex] ?? 'n/a'}); results in ${out} and .csv`);
        if (f.json) {
          printJsonLine({ kind: 'downstream', model: f.model, dataset: name, metric: dataset.metric, testScore: run.probe.testScore, C: run.probe.chosenC, file: out });
        } else {
          process.stdout.write(`${f.model} on ${name}: ${pythonFixed(run.probe.testScore, 2)}\n`);
        }
      } finally {
        model.dispose();
        await decoder?.close();
      }
    }));
}
