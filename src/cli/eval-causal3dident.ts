/**
 * `ssl-inv eval-causal3dident --model dorsal --target 0`: the original's eval_causal3dident.py.
 * StandardScaler + RBF KernelRidge on the model's features of Causal3DIdent, alpha in
 * logspace(0, -4, 5) x gamma in logspace(-5, 2, 8) chosen by K-fold CV (seeded), R^2 on the test
 * samples; prints the score as the original does (`print(score)`) and writes
 * {results-dir}/{model}_{layer}_causal3dident_{target}.json.
 */
import { Command, Option } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/preprocess';
import { readCausal3DIdentDataset } from '../datasets';
import { runCausal3DIdent } from '../eval/downstream-run';
import { pythonFloatRepr } from './python-format';
import { loadNamedModel } from '../eval/models';
import { causal3dIdentCsv } from '../eval/probe-csv';
import { versions } from '../eval/results';
import { writeFileAtomic } from '../io/atomic-write';
import { setNumThreads } from '../ops';
import { activationsOption, announceOnStderr, DEVICE_DEFAULT, deviceHelp, JSON_HELP, parseArithmetic, parseDevice, parseSeed, positiveInt, precisionOption, printJsonLine } from './common';
import { stderrSink } from './sink';
import { addDecodeOptions, checkDecodeFlags, DecodeFlags, OpenedDecoder, openDecoder } from './decode-flags';

interface Flags extends DecodeFlags {
  model: string;
  fuseMode: 'cat' | 'add' | 'mean';
  target: string;
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
  seed: string;
  threads?: number;
  quiet?: boolean;
  json?: boolean;
}

export function evalCausal3DIdentCommand(): Command {
  return addDecodeOptions(new Command('eval-causal3dident')
    .description('extrinsic invariance: kernel ridge regression of Causal3DIdent\'s latents (or class) from a model\'s features')
    .option('--model <name>', 'checkpoint name in --ckpt-dir (or a+b+c)', 'default')
    .addOption(new Option('--fuse-mode <mode>', 'how a+b+c models combine features').choices(['cat', 'add', 'mean']).default('cat'))
    .option('--target <t>', 'latent index 0-9, or class', '0')
    .option('--cv-folds <n>', 'cross-validation folds', positiveInt('--cv-folds'), 5)
    .option('--device <device>', deviceHelp('the network and the probe\'s float64 GEMMs run there'), DEVICE_DEFAULT)
    .addOption(precisionOption())
    .addOption(activationsOption())
    .addOption(new Option('--feature-layer <layer>', 'layer to take features from').choices(['backbone']).default('backbone'))
    .option('--batch-size <n>', 'images per forward pass', positiveInt('--batch-size'), 64)
    .option('--resize <n>', 'Resize of the shorter side', positiveInt('--resize'), 224)
    .option('--crop-size <n>', 'CenterCrop size', positiveInt('--crop-size'), 224)
    .option('--ckpt-dir <dir>', 'folder of {model}.pth.tar checkpoints', './models/')
    .option('--results-dir <dir>', 'where results go', './results/')
    .option('--data-root <dir>', 'folder holding Causal3DIdent/', '../data/')
    .option('--quick', 'at most 100 batches per split (the original\'s debug mode)')
    .option('--seed <n>', 'seed of the sample subsets and the K-fold shuffle (the original\'s are unseeded)', '0')
    .option('--threads <n>', 'CPU threads', positiveInt('--threads'))
    .option('--quiet', 'no progress output')
    .option('--json', JSON_HELP)
    .action(async (f: Flags) => {
      const device = parseDevice(f.device, announceOnStderr(f.quiet));
      checkDecodeFlags(f);
      const { precision, activations } = parseArithmetic(f, device);
      if (f.threads !== undefined) setNumThreads(f.threads);
      const seed = parseSeed(f.seed);
      const sink = stderrSink(f.quiet ?? false);
      const started = Date.now();
      const dataset = await readCausal3DIdentDataset(f.dataRoot, { target: f.target });
      const model = await loadNamedModel(f.model, { ckptDir: f.ckptDir, fuseMode: f.fuseMode, device, precision, activations, onNotice: (m) => sink.notice(m) });
      let decoder: OpenedDecoder | undefined;
      try {
        decoder = openDecoder(f, (line) => sink.notice(line));
        const run = await runCausal3DIdent({
          model, dataset, transform: { resize: f.resize, crop: f.cropSize, mean: IMAGENET_MEAN, std: IMAGENET_STD },
          batchSize: f.batchSize, folds: f.cvFolds, seed, quick: f.quick ?? false, sink, probeDevice: device,
          ...(decoder.decode ? { decode: decoder.decode } : {}),
        });
        const out = path.join(f.resultsDir, `${f.model}_${f.featureLayer}_causal3dident_${f.target}.json`);
        fs.mkdirSync(f.resultsDir, { recursive: true });
        await writeFileAtomic(out, Buffer.from(`${JSON.stringify({
          format: 'ssl-inv-causal3dident/1', model: f.model, fuseMode: f.fuseMode, target: f.target,
          models: model.provenance,
          config: { resize: f.resize, crop: f.cropSize, batchSize: f.batchSize, folds: f.cvFolds, quick: f.quick ?? false, dataRoot: f.dataRoot },
          rows: { trainval: run.trainvalRows, test: run.testRows }, seed, device, precision, activations, versions: versions(device), probe: run.probe,
          created: new Date().toISOString(), seconds: (Date.now() - started) / 1000,
        }, null, 1)}\n`));
        await writeFileAtomic(out.replace(/\.json$/, '.csv'), Buffer.from(causal3dIdentCsv(f.model, String(f.target), run.probe)));
        sink.notice(`best alpha ${run.probe.chosenAlpha}, gamma ${run.probe.chosenGamma}; results in ${out} and .csv`);
        if (f.json) {
          printJsonLine({ kind: 'causal3dident', model: f.model, target: f.target, testScore: run.probe.testScore, alpha: run.probe.chosenAlpha,
            gamma: run.probe.chosenGamma, file: out });
        } else {
          process.stdout.write(`${pythonFloatRepr(run.probe.testScore)}\n`);
        }
      } finally {
        model.dispose();
        await decoder?.close();
      }
    }));
}
