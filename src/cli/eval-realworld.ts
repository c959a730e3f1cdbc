/**
 * `ssl-inv eval-realworld --model ventral --dataset COIL100`: the original's
 * eval_realworld_invariance.py. Per class of the data set: the whitened features of its views,
 * their mean pairwise cosine similarity (diagonal included) and mean pairwise distance; prints, as
 * the original, `{model}: {distance}, {similarity}` (Python's float repr) and writes
 * {model}_{layer}_{dataset}_invariance.json / .csv.
 *
 * The whitening statistics come, as in the original, from an earlier eval-synthetic run of the same
 * checkpoint(s): found in --results-dir by checkpoint SHA-256 and feature layer, preferring the
 * default preprocessing (resize 256, crop 224); --stats FILE names one; --stats-data DIR computes
 * them now from an ImageFolder tree. `--dataset folder --data-root DIR` evaluates any tree whose
 * class folders hold the views of one object each.
 */
import { Command, Option } from 'commander';
import * as path from 'node:path';
import { SslInvError } from '../errors';
import { listImageFolder } from '../data/image-folder';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/preprocess';
import { readRealWorldDataset, REALWORLD_DATASETS } from '../datasets';
import { prepareWhitening } from '../eval/invariance';
import { pythonFloatRepr } from './python-format';
import { loadNamedModel } from '../eval/models';
import { ViewGroup } from '../eval/realworld';
import { runRealWorld } from '../eval/realworld-run';
import { findStatsFiles, FeatureStats, loadOrComputeStats, readStatsFile } from '../eval/stats';
import { setNumThreads } from '../ops';
import { resultBaseName } from '../eval/results';
import { activationsOption, announceOnStderr, DEVICE_DEFAULT, deviceHelp, JSON_HELP, parseArithmetic, parseDevice, positiveInt, precisionOption, printJsonLine } from './common';
import { stderrSink } from './sink';
import { addDecodeOptions, checkDecodeFlags, DecodeFlags, OpenedDecoder, openDecoder } from './decode-flags';

interface Flags extends DecodeFlags {
  model: string;
  dataset: string;
  dataRoot: string;
  device: string;
  featureLayer: string;
  resize: number;
  cropSize: number;
  ckptDir: string;
  resultsDir: string;
  stats?: string;
  statsData?: string;
  batchSize: number;
  precision: string;
  activations: string;
  fuseMode: 'cat' | 'add' | 'mean';
  threads?: number;
  quiet?: boolean;
  json?: boolean;
}

async function folderGroups(root: string): Promise<ViewGroup[]> {
  const listing = await listImageFolder(root);
  return listing.classes.map((name, i) => ({ name, files: listing.samples.filter((s) => s.classIndex === i).map((s) => s.path) }));
}

export function evalRealworldCommand(): Command {
  return addDecodeOptions(new Command('eval-realworld')
    .description('invariance of a model\'s features across the real-world views of the original\'s 7 data sets')
    .option('--model <name>', 'checkpoint name in --ckpt-dir (or a+b+c)', 'default')
    .option('--dataset <name>', `${Object.keys(REALWORLD_DATASETS).join(', ')}, or folder`, 'Flickr1024')
    .option('--data-root <dir>', 'folder holding the data sets (or, with --dataset folder, the tree itself)', '../data/')
    .option('--device <device>', deviceHelp('the CUDA backend runs the networks'), DEVICE_DEFAULT)
    .addOption(new Option('--feature-layer <layer>', 'layer to take features from').choices(['backbone']).default('backbone'))
    .option('--resize <n>', 'Resize of the shorter side', positiveInt('--resize'), 224)
    .option('--crop-size <n>', 'CenterCrop size', positiveInt('--crop-size'), 224)
    .option('--ckpt-dir <dir>', 'folder of {model}.pth.tar checkpoints', './models/')
    .option('--results-dir <dir>', 'where the statistics are found and results go', './results/')
    .option('--stats <file>', 'the feature statistics to whiten with (a *_feature_stats_*.safetensors file)')
    .option('--stats-data <dir>', 'compute the statistics now from this ImageFolder tree (resize 256, crop 224)')
    .option('--batch-size <n>', 'views per forward pass', positiveInt('--batch-size'), 256)
    .addOption(precisionOption())
    .addOption(activationsOption())
    .addOption(new Option('--fuse-mode <mode>', 'how a+b+c models combine features').choices(['cat', 'add', 'mean']).default('cat'))
    .option('--threads <n>', 'CPU threads', positiveInt('--threads'))
    .option('--quiet', 'no progress output')
    .option('--json', JSON_HELP)
    .action(async (f: Flags) => {
      const device = parseDevice(f.device, announceOnStderr(f.quiet));
      checkDecodeFlags(f);
      const { precision, activations } = parseArithmetic(f, device);
      if (f.threads !== undefined) setNumThreads(f.threads);
      const sink = stderrSink(f.quiet ?? false);
      let groups: ViewGroup[];
      let dataRoot: string;
      if (f.dataset === 'folder') {
        dataRoot = f.dataRoot;
        groups = await folderGroups(dataRoot);
      } else {
        if (!Object.prototype.hasOwnProperty.call(REALWORLD_DATASETS, f.dataset)) {
          throw new SslInvError('ERR_USAGE', `--dataset '${f.dataset}': expected one of ${Object.keys(REALWORLD_DATASETS).join(', ')}, or folder`);
        }
        const ds = await readRealWorldDataset(f.dataset, f.dataRoot);
        dataRoot = ds.root;
        groups = ds.groups;
      }
      const model = await loadNamedModel(f.model, { ckptDir: f.ckptDir, fuseMode: f.fuseMode, device, precision, activations, onNotice: (m) => sink.notice(m) });
      let decoder: OpenedDecoder | undefined;
      try {
        decoder = openDecoder(f, (line) => sink.notice(line));
        const ids = model.parts.map((p) => ({ name: p.name, sha256: p.sha256 }));
        // Statistics whiten the features of the networks that made them: those of another precision or
        // activation storage (say fp32 ones for a tf32 run) are slightly other features, so their use is said.
        const arithmeticOf = (s: FeatureStats) => `${s.inputs.precision ?? 'fp32'} networks with ${s.inputs.activations ?? 'float32'} activations`;
        const ours = `${precision} networks with ${activations} activations`;
        let stats: FeatureStats;
        if (f.stats !== undefined) {
          const got = await readStatsFile(f.stats);
          if (typeof got === 'string') throw new SslInvError('ERR_CHECKPOINT_CORRUPT', `cannot use these statistics: ${got}`, { file: f.stats });
          const same = got.inputs.models.length === ids.length && got.inputs.models.every((m, i) => m.sha256 === ids[i]!.sha256);
          if (!same) throw new SslInvError('ERR_USAGE', `these statistics were made with other checkpoints than --model ${f.model}`, { file: f.stats });
          stats = got;
          if (arithmeticOf(stats) !== ours) sink.notice(`${f.stats} was made by ${arithmeticOf(stats)}; this run has ${ours}`);
        } else if (f.statsData !== undefined) {
          const listing = await listImageFolder(f.statsData);
          let seen = 0;
          let bar: { tick(n: number): void; done(): void } | undefined;
          stats = await loadOrComputeStats({
            model, modelName: f.model, models: ids, fuseMode: f.fuseMode, featureLayer: f.featureLayer,
            dataset: path.basename(path.resolve(f.statsData)), split: '', listing, batchSize: f.batchSize, resultsDir: f.resultsDir, precision, activations,
            transform: { resize: 256, crop: 224, mean: IMAGENET_MEAN, std: IMAGENET_STD }, ...(decoder.decode ? { decode: decoder.decode } : {}),
            onNotice: (m) => sink.notice(m),
            onProgress: (done, total) => { bar ??= sink.start('statistics', total, 'img'); bar.tick(done - seen); seen = done; },
          });
          bar?.done();
        } else {
          const fitting = (await findStatsFiles(f.resultsDir, ids, f.featureLayer)).filter((s) => s.inputs.fuseMode === f.fuseMode);
          // Statistics of networks with this run's arithmetic first; others only when there are none.
          const same = fitting.filter((s) => arithmeticOf(s) === ours);
          const found = same.length ? same : fitting;
          const preferred = found.filter((s) => s.inputs.resize === 256 && s.inputs.crop === 224);
          if (found.length === 0) {
            throw new SslInvError('ERR_FILE_NOT_FOUND',
              `no feature statistics of --model ${f.model} (these checkpoints, layer ${f.featureLayer}) in ${f.resultsDir}: ` +
              'run eval-synthetic for this model first, or pass --stats-data DIR to compute them now', { file: f.resultsDir });
          }
          const pick = preferred.length ? preferred : found;
          if (pick.length > 1 && !preferred.length) {
            throw new SslInvError('ERR_USAGE', `several statistics fit --model ${f.model}; choose one with --stats: ${pick.map((s) => s.file).join(', ')}`);
          }
          stats = pick[0]!;
          if (!same.length) sink.notice(`no statistics of ${ours} found: using ${stats.file}, made by ${arithmeticOf(stats)}`);
        }
        sink.notice(`whitening with ${stats.file} (${stats.count} images)`);
        const whitening = prepareWhitening(stats, { ridge: f.model === 'random', source: stats.file });
        const { result } = await runRealWorld({
          model, modelName: f.model, stats, whitening, dataset: f.dataset, dataRoot, groups, resize: f.resize, crop: f.cropSize,
          batchSize: f.batchSize, featureLayer: f.featureLayer, fuseMode: f.fuseMode, resultsDir: f.resultsDir, device, precision, activations, sink,
          ...(decoder.decode ? { decode: decoder.decode } : {}),
        });
        if (f.json) {
          printJsonLine({ kind: 'realworld', model: f.model, dataset: f.dataset, distance: result.summary.distance, similarity: result.summary.similarity,
            file: path.join(f.resultsDir, `${resultBaseName(result)}.json`) });
        } else {
          process.stdout.write(`${f.model}: ${pythonFloatRepr(result.summary.distance)}, ${pythonFloatRepr(result.summary.similarity)}\n`);
        }
      } finally {
        model.dispose();
        await decoder?.close();
      }
    }));
}
