/**
 * `ssl-inv pretrain DATA`: MoCo v2 pre-training with main_moco.py's flags, on the CPU or (--device
 * cuda, or main_moco.py's --gpu N for cuda:N) a CUDA device.
 *
 *   ssl-inv pretrain DATA [--split train] [--model default|ventral|dorsal] [-a resnet50] [--epochs 200]
 *     [-b 256] [--lr 0.03] [--schedule 120 160 | --cos] [--momentum 0.9] [--wd 1e-4] [--resume FILE]
 *     [--seed N] [--moco-dim 128] [--moco-k 65536] [--moco-m 0.999] [--moco-t 0.07] [--mlp]
 *     [--image-size 224] [--out-dir .] [--threads N] [--max-steps-per-epoch N] [--bn-splits 1]
 *
 * Every epoch writes `{model}[_w3]_{epoch:04d}.pth.tar` into --out-dir (main_moco.py writes into the
 * working directory), which PyTorch, main_moco.py --resume and our evaluators load. Progress goes to
 * stderr in main_moco.py's form (`Epoch: [e][ i/N]  Loss ...`, one line per emulated GPU) every
 * --print-freq steps, with rate and ETA; each step's loss and accuracies (the batch's, then each
 * GPU's) to --out-dir/pretrain-log.csv, the run's summary to pretrain-summary.json, and a table of
 * the epochs to stdout.
 *
 * main_moco.py's DistributedDataParallel flags (--world-size, --rank, --dist-url, --dist-backend,
 * --multiprocessing-distributed) are accepted so its command lines run, and said to be ignored: this
 * is one process. What DDP changes in the result, per-GPU batch norm and shuffle BN, is computed by
 * --bn-splits N for N GPUs (main_moco.py's -b is the batch of all GPUs together; so is ours).
 * --device auto stays on the CPU even where a GPU is present, and says so: the CUDA training kernels
 * pass on the emulated device but have not yet run on a GPU (bench/device); --device cuda asks for them.
 * --aug-plus is accepted and, as in main_moco.py (whose views come from --model alone), has no effect.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { SslInvError } from '../errors';
import { DEVICE_ENV, DeviceSpec, cudaAvailable, resolveDevice } from '../device';
import { writeFileAtomic, writeFileAtomicSync } from '../io/atomic-write';
import { setNumThreads } from '../ops';
import { ARCHS, Arch } from '../nn/resnet-spec';
import { AUGMENT_SETS, AugmentSet } from '../transforms/augment';
import { EpochRecord, runPretraining } from '../train/pretrain';
import { MocoGpuMeters } from '../train/moco';
import { packageVersion } from './info';
import { nonNegativeInt, parseSeed, positiveInt } from './common';
import { formatSeconds } from './progress';
import { emitEvent, jsonOutput, progressMode, writeNotice } from './stderr-output';
import { pythonExp, pythonFixed } from './python-format';
import { addDecodeOptions, DecodeFlags, openDecoder } from './decode-flags';
import { mergeCheckpoints, readRecordedCheckpoints, recordedDigests, SUMMARY_FILE } from './pretrain-manifest';

interface Flags extends DecodeFlags {
  split: string;
  model: string;
  arch: string;
  workers: number;
  epochs: number;
  startEpoch: number;
  batchSize: number;
  learningRate: number;
  schedule: number[];
  momentum: number;
  weightDecay: number;
  printFreq: number;
  resume?: string;
  resumeOverride?: boolean;
  worldSize: number;
  rank: number;
  distUrl?: string;
  distBackend?: string;
  seed: string;
  gpu?: string;
  multiprocessingDistributed?: boolean;
  mocoDim: number;
  mocoK: number;
  mocoM: number;
  mocoT: number;
  mlp?: boolean;
  augPlus?: boolean;
  cos?: boolean;
  imageSize: number;
  outDir: string;
  device: string;
  threads?: number;
  maxStepsPerEpoch?: number;
  bnSplits: number;
  onError: 'error' | 'skip';
  quiet?: boolean;
}

function num(flag: string, min = 0): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min) throw new SslInvError('ERR_USAGE', `${flag} takes a number >= ${min}, got '${v}'`);
    return n;
  };
}

function milestones(v: string, prev: number[] | undefined): number[] {
  // main_moco.py's nargs='*': each value is one milestone; the first one given replaces the default.
  const n = nonNegativeInt('--schedule')(v);
  return prev === DEFAULT_SCHEDULE || prev === undefined ? [n] : [...prev, n];
}
const DEFAULT_SCHEDULE = [120, 160];

export function pretrainCommand(): Command {
  return addDecodeOptions(new Command('pretrain')
    .description('pre-train a MoCo v2 ResNet with an augmentation set, as the original\'s main_moco.py, on the CPU or a CUDA device')
    .argument('<data>', 'dataset root; images are read from DATA/SPLIT, an ImageFolder tree')
    .option('--split <split>', 'sub-folder of DATA to train on', 'train')
    .addOption(new Option('--model <set>', 'augmentation set: default (crop, colour, grayscale, blur, flip), ventral (crop, flip), dorsal (colour, grayscale, blur)')
      .choices([...AUGMENT_SETS]).default('default'))
    .addOption(new Option('-a, --arch <arch>', 'network').choices([...ARCHS]).default('resnet50'))
    .option('-j, --workers <n>', 'images decoded at once', positiveInt('--workers'), 32)
    .addOption(new Option('--on-error <policy>', 'an unreadable image: error (stop the run) or skip (list it, and fill its place with another image of its batch)').choices(['error', 'skip']).default('error'))
    .option('--epochs <n>', 'total epochs', positiveInt('--epochs'), 200)
    .option('--start-epoch <n>', 'first epoch (a --resume checkpoint sets it)', nonNegativeInt('--start-epoch'), 0)
    .option('-b, --batch-size <n>', 'images per step', positiveInt('--batch-size'), 256)
    .option('--lr, --learning-rate <x>', 'initial learning rate', num('--lr'), 0.03)
    .option('--schedule <epochs...>', 'epochs at which the learning rate drops 10x (without --cos)', milestones, DEFAULT_SCHEDULE)
    .option('--momentum <x>', 'SGD momentum', num('--momentum'), 0.9)
    .option('--wd, --weight-decay <x>', 'weight decay', num('--wd'), 1e-4)
    .option('-p, --print-freq <n>', 'a progress line every n steps', positiveInt('--print-freq'), 10)
    .option('--resume <file>', 'continue from a checkpoint (ours or main_moco.py\'s): weights, queue, momentum and epoch; "latest": the newest readable one of this run in --out-dir (none: start afresh)')
    .option('--resume-override', 'resume even when the checkpoint\'s run had another --seed, --model, --batch-size, --bn-splits, --image-size or other training images, or its bytes differ from those pretrain-summary.json records (refused otherwise: the run would not be the one it continues)')
    .option('--world-size <n>', '(main_moco.py\'s DDP flag; this is one process)', (v) => Number(v), -1)
    .option('--rank <n>', '(main_moco.py\'s DDP flag; ignored)', (v) => Number(v), -1)
    .option('--dist-url <url>', '(main_moco.py\'s DDP flag; ignored)')
    .option('--dist-backend <name>', '(main_moco.py\'s DDP flag; ignored)')
    .option('--multiprocessing-distributed', '(main_moco.py\'s DDP flag; ignored)')
    .option('--gpu <id>', 'train on CUDA device <id> (main_moco.py\'s flag; the same as --device cuda:<id>)')
    .option('--bn-splits <n>', 'emulate main_moco.py on n GPUs: each batch norm sees batch/n images, keys shuffled across the n (shuffle BN)', positiveInt('--bn-splits'), 1)
    .option('--seed <n>', 'seed of the initial weights, the image order and the views (same seed, same run)', '0')
    .option('--moco-dim <n>', 'feature dimension of the head', positiveInt('--moco-dim'), 128)
    .option('--moco-k <n>', 'queue size; number of negative keys', positiveInt('--moco-k'), 65536)
    .option('--moco-m <x>', 'momentum of the key encoder', num('--moco-m'), 0.999)
    .option('--moco-t <x>', 'softmax temperature', num('--moco-t'), 0.07)
    .option('--mlp', 'MLP head (MoCo v2)')
    .option('--aug-plus', '(accepted; as in main_moco.py, the views come from --model)')
    .option('--cos', 'cosine learning-rate schedule')
    .option('--image-size <n>', 'side of the square views (main_moco.py: 224)', positiveInt('--image-size'), 224)
    .option('--out-dir <dir>', 'where checkpoints, pretrain-log.csv and pretrain-summary.json go', '.')
    .option('--device <device>', 'cpu, cuda or cuda:N (auto means cpu here: the CUDA training path has not yet been verified on a GPU)', 'auto')
    .option('--threads <n>', 'CPU threads for the kernels (default: all cores)', positiveInt('--threads'))
    .option('--max-steps-per-epoch <n>', 'cut every epoch short after n steps (smoke runs)', positiveInt('--max-steps-per-epoch'))
    .option('--quiet', 'no progress output')
    .action(async (data: string, flags: Flags) => {
      await runPretrainCommand(data, flags);
    }));
}

async function runPretrainCommand(data: string, f: Flags): Promise<void> {
  const say = (line: string) => { if (!f.quiet) writeNotice(line); };
  const device = trainingDevice(f, say);
  if (f.worldSize > 1 || f.multiprocessingDistributed || f.rank >= 0 || f.distUrl !== undefined || f.distBackend !== undefined) {
    say(`DistributedDataParallel flags ignored: this is one process${f.bnSplits > 1 ? ''
      : ', and every batch norm sees the whole batch (--bn-splits N computes what N GPUs would)'}`);
  }
  if (f.mocoT <= 0) throw new SslInvError('ERR_USAGE', `--moco-t takes a number > 0, got ${f.mocoT}`);
  if (f.mocoM > 1) throw new SslInvError('ERR_USAGE', `--moco-m takes a number in [0, 1], got ${f.mocoM}`);
  if (f.batchSize < 2) throw new SslInvError('ERR_USAGE', '--batch-size: train-mode batch norm needs 2 or more images per step');
  if (f.batchSize % f.bnSplits !== 0 || f.batchSize / f.bnSplits < 2) {
    throw new SslInvError('ERR_USAGE', `--bn-splits ${f.bnSplits}: --batch-size ${f.batchSize} must split into ${f.bnSplits} equal groups of 2 or more images`);
  }
  if (f.mocoK % f.batchSize !== 0) throw new SslInvError('ERR_USAGE', `--moco-k ${f.mocoK} must be a multiple of --batch-size ${f.batchSize} (MoCo's enqueue asserts it)`);
  if (f.imageSize < 32) throw new SslInvError('ERR_USAGE', `--image-size takes an integer >= 32, got ${f.imageSize}`);
  if (f.threads !== undefined) setNumThreads(f.threads);
  const seed = parseSeed(f.seed);
  const outDir = path.resolve(f.outDir);
  // The log is opened when the first epoch starts, once the data, the checkpoint to resume and the
  // model have been read: a run refused before that leaves no file behind.
  let log: number | undefined;
  let epochStart = Date.now();
  // main_moco.py's AverageMeters: one set per GPU process (each prints its own line).
  let meters = newMeters(f.bnSplits);
  const options = {
    data, split: f.split, model: f.model as AugmentSet, arch: f.arch as Arch, epochs: f.epochs, startEpoch: f.startEpoch,
    batchSize: f.batchSize, lr: f.learningRate, schedule: f.schedule, cos: f.cos ?? false, momentum: f.momentum,
    weightDecay: f.weightDecay, mocoDim: f.mocoDim, mocoK: f.mocoK, mocoM: f.mocoM, mocoT: f.mocoT, mlp: f.mlp ?? false,
    seed, imageSize: f.imageSize, outDir, workers: f.workers, bnSplits: f.bnSplits, onError: f.onError, device,
    ...(f.resume !== undefined ? { resume: f.resume } : {}),
    ...(f.resumeOverride ? { resumeOverride: true } : {}),
    ...(f.maxStepsPerEpoch !== undefined ? { maxStepsPerEpoch: f.maxStepsPerEpoch } : {}),
  };
  const started = Date.now();
  const skipped = new Map<string, { file: string; code: string; message: string; times: number }>();
  let result;
  // The checkpoints this run's summary lists, with their digests: a resume checks the one it takes.
  const earlier = await readRecordedCheckpoints(outDir, say);
  // Decoder processes' deaths are always told (like skips): the run's data may have changed.
  const decoder = openDecoder(f, (line) => writeNotice(line));
  try {
    result = await runPretraining({
      ...options, recordedSha256: recordedDigests(outDir, earlier), ...(decoder.decode ? { decode: decoder.decode } : {}),
    }, {
      notice: say,
      onSkip: (k) => {
        // Always on stderr, even with --quiet: the run's data changed.
        if (jsonOutput()) {
          emitEvent('skipped', { file: k.file, epoch: k.epoch, step: k.step, code: k.error.code, message: k.error.message, replaced_by: k.replacedBy });
        } else {
          process.stderr.write(`ssl-inv: skipped ${k.file} (epoch ${k.epoch}, step ${k.step}): ${k.error.code}: ${k.error.message}; ` +
            `its place in the batch went to ${k.replacedBy}\n`);
        }
        const e = skipped.get(k.file) ?? { file: k.file, code: k.error.code, message: k.error.message, times: 0 };
        e.times++;
        skipped.set(k.file, e);
      },
      onEpochStart: (epoch, steps, lr) => {
        log ??= openLog(path.join(outDir, 'pretrain-log.csv'), logHeader(f.bnSplits), f.resume !== undefined ? epoch : undefined, say);
        epochStart = Date.now();
        meters = newMeters(f.bnSplits);
        say(`epoch ${epoch}: ${steps} step${steps === 1 ? '' : 's'} of ${f.batchSize} images, lr ${lr.toPrecision(4)}`);
      },
      onStep: (s) => {
        const gpuCells = s.perGpu.length > 1 ? s.perGpu.map((g) => `,${g.loss},${g.acc1},${g.acc5}`).join('') : '';
        fs.writeSync(log!, `${s.epoch},${s.step},${s.lr},${s.loss},${s.acc1},${s.acc5}${gpuCells}\n`);
        s.perGpu.forEach((g, r) => meters[r]!.update(g));
        if (f.quiet || progressMode() === 'none' || (s.step % f.printFreq !== 0 && s.step !== s.steps - 1)) return;
        const secs = (Date.now() - epochStart) / 1000;
        const rate = ((s.step + 1) * s.images) / Math.max(secs, 1e-3);
        const eta = ((s.steps - s.step - 1) * s.images) / rate;
        // The whole run's remaining time at this epoch's rate: the rest of this epoch and the epochs after.
        const runEta = eta + ((f.epochs - s.epoch - 1) * s.steps * s.images) / rate;
        if (jsonOutput()) {
          emitEvent('step', {
            epoch: s.epoch, step: s.step, steps: s.steps, lr: s.lr, loss: s.loss, acc1: s.acc1, acc5: s.acc5,
            ...(s.perGpu.length > 1 ? { per_gpu: s.perGpu.map((g, r) => ({ gpu: r, loss: g.loss, acc1: g.acc1, acc5: g.acc5 })) } : {}),
            rate: Number(rate.toFixed(3)), eta_s: Number(eta.toFixed(3)), run_eta_s: Number(runEta.toFixed(3)),
          });
          return;
        }
        const w = String(s.steps).length;
        // main_moco.py's meters: Loss ':.4e', Acc@1 and Acc@5 ':6.2f', each with the epoch's mean. Each
        // of its GPU processes prints its own line for its share of the batch; so do we, GPU 0 first,
        // each tagged with its GPU when there are several, the rate and ETA on the last.
        const acc = (v: number) => pythonFixed(v, 2).padStart(6);
        const lines = s.perGpu.map((g, r) => {
          const m = meters[r]!;
          return `Epoch: [${s.epoch}][${String(s.step).padStart(w)}/${s.steps}]\tLoss ${pythonExp(g.loss)} (${pythonExp(m.loss / m.count)})` +
            `\tAcc@1 ${acc(g.acc1)} (${acc(m.acc1 / m.count)})\tAcc@5 ${acc(g.acc5)} (${acc(m.acc5 / m.count)})` +
            (s.perGpu.length > 1 ? `\tGPU ${r}` : '');
        });
        process.stderr.write(`${lines.join('\n')}\t${rate.toFixed(1)} img/s\tETA ${formatSeconds(eta)} (run ${formatSeconds(runEta)})\n`);
      },
      onEpochEnd: (r) => say(`epoch ${r.epoch}: mean loss ${pythonFixed(r.meanLoss, 4)}, Acc@1 ${pythonFixed(r.meanAcc1, 2)}, ` +
        `Acc@5 ${pythonFixed(r.meanAcc5, 2)}, ${r.imagesPerSecond.toFixed(1)} img/s -> ${r.checkpoint}`),
    });
  } catch (e) {
    // Out of memory: the message says what was being allocated; add the setting that sizes it.
    if (e instanceof SslInvError && e.code === 'ERR_OUT_OF_MEMORY') {
      // (e.message already names its file and field, if any.)
      throw new SslInvError(e.code, `${e.message} (this run: --batch-size ${f.batchSize}, --image-size ${f.imageSize}, -a ${f.arch})`, { cause: e });
    }
    throw e;
  } finally {
    if (log !== undefined) fs.closeSync(log);
    await decoder.close();
  }
  const summary = {
    tool: 'ssl-invariances', version: packageVersion(), node: process.version, date: new Date().toISOString(),
    seconds: (Date.now() - started) / 1000, images: result.images, classes: result.classes,
    options: { ...options, data: path.resolve(data), decodeWorkers: f.decodeWorkers, ...(f.maxPixels !== undefined ? { maxPixels: f.maxPixels } : {}),
      ...(f.decodeMemoryMb !== undefined ? { decodeMemoryMb: f.decodeMemoryMb } : {}), ...(f.decodeTimeout !== undefined ? { decodeTimeout: f.decodeTimeout } : {}) },
    ...(result.resumedFrom !== undefined ? { resumedFrom: result.resumedFrom } : {}),
    epochs: result.epochs,
    checkpoints: await mergeCheckpoints(outDir, earlier, result.startEpoch, result.epochs),
    skippedImages: [...skipped.values()],
  };
  await writeFileAtomic(path.join(outDir, SUMMARY_FILE), Buffer.from(`${JSON.stringify(summary, null, 2)}\n`));
  process.stdout.write(table(result.epochs));
  if (result.epochs.length === 0) process.stdout.write(`nothing to do: the run is at epoch ${result.startEpoch} of ${f.epochs}\n`);
}

/**
 * The device of --device / --gpu: --gpu N is cuda:N (main_moco.py's single-GPU flag) and may not
 * contradict --device; auto is SSL_INV_DEVICE when that names a device, else the CPU (said once when
 * a GPU is present, since the CUDA training kernels have not yet run on a GPU).
 */
function trainingDevice(f: Flags, say: (line: string) => void): DeviceSpec {
  if (f.gpu !== undefined) {
    if (!/^\d{1,3}$/.test(f.gpu)) throw new SslInvError('ERR_USAGE', `--gpu takes a device number, got '${f.gpu}'`);
    const name = `cuda:${Number(f.gpu)}`;
    if (f.device !== 'auto' && (f.device === 'cuda' ? 'cuda:0' : f.device) !== name) {
      throw new SslInvError('ERR_USAGE', `--gpu ${f.gpu} and --device ${f.device} name different devices`);
    }
    return resolveDevice(name, '--gpu');
  }
  if (f.device === 'auto') {
    // SSL_INV_DEVICE set to a device is the user asking, as --device would.
    const env = process.env[DEVICE_ENV]?.trim();
    if (env && env !== 'auto') return resolveDevice(env, DEVICE_ENV);
    if (cudaAvailable()) say('a GPU is present; pre-training stays on the CPU unless asked (--device cuda): its CUDA kernels have not yet been verified on a GPU (ssl-inv selftest checks them on this one against the CPU)');
    return 'cpu';
  }
  return resolveDevice(f.device, '--device');
}

/**
 * The per-step log's columns: the whole batch's loss and accuracies, then, with several emulated
 * GPUs, each GPU's (its share of the batch, what its main_moco.py process prints).
 */
function logHeader(gpus: number): string {
  const perGpu = gpus > 1 ? Array.from({ length: gpus }, (_, r) => `,loss_gpu${r},acc1_gpu${r},acc5_gpu${r}`).join('') : '';
  return `epoch,step,lr,loss,acc1,acc5${perGpu}`;
}

/** A running mean of one GPU's meters over the epoch's steps (main_moco.py's AverageMeter). */
function newMeters(gpus: number) {
  return Array.from({ length: gpus }, () => ({
    loss: 0, acc1: 0, acc5: 0, count: 0,
    update(g: MocoGpuMeters) {
      this.loss += g.loss;
      this.acc1 += g.acc1;
      this.acc5 += g.acc5;
      this.count++;
    },
  }));
}

/**
 * The per-step CSV log. Resuming at epoch `resumeAt` into a log with the same columns appends to it,
 * after dropping its rows of epochs `resumeAt` and later: those came from a run interrupted after its
 * last checkpoint, and the resumed run writes them again. A log with other columns (an older
 * version's, or another --bn-splits') is kept beside it under a new name, not appended to.
 */
function openLog(file: string, header: string, resumeAt: number | undefined, say: (line: string) => void): number {
  if (resumeAt !== undefined && fs.existsSync(file)) {
    const lines = fs.readFileSync(file, 'latin1').split('\n');
    const head = lines[0];
    if (head === header) {
      const rows = lines.slice(1).filter((l) => l !== '');
      const kept = rows.filter((l) => Number(l.slice(0, l.indexOf(','))) < resumeAt);
      if (kept.length < rows.length) {
        // Atomic (a crash here keeps the old log whole) and registered for the Ctrl-C cleanup.
        writeFileAtomicSync(file, Buffer.from([header, ...kept, ''].join('\n'), 'latin1'));
        say(`${file}: dropped ${rows.length - kept.length} row(s) of epoch ${resumeAt} and later (an interrupted run's); they are written again`);
      }
      return fs.openSync(file, 'a');
    }
    if (fs.statSync(file).size > 0) {
      const kept = file.replace(/\.csv$/, `.${Date.now()}.csv`);
      fs.renameSync(file, kept);
      say(`${file} has other columns (${head}); kept as ${kept}, a new log begins`);
    }
  }
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, `${header}\n`);
  return fd;
}

function table(rows: EpochRecord[]): string {
  const head = ['epoch', 'lr', 'steps', 'mean loss', 'Acc@1', 'Acc@5', 'img/s', 'checkpoint'];
  const cells = rows.map((r) => [String(r.epoch), r.lr.toPrecision(4), String(r.steps), pythonFixed(r.meanLoss, 4),
    pythonFixed(r.meanAcc1, 2), pythonFixed(r.meanAcc5, 2), r.imagesPerSecond.toFixed(1), r.checkpoint]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(widths[i]!)).join('  ').trimEnd();
  return `${line(head)}\n${cells.map(line).join('\n')}${cells.length ? '\n' : ''}`;
}
