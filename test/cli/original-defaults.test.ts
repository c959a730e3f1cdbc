// Every flag the original scripts define keeps its argparse default here (read from the scripts of
// linusericsson/ssl-invariances and facebookresearch/moco's main_moco.py), so a command line copied
// from the original computes the same thing. The documented exceptions: --device (auto: a usable
// GPU, else the CPU, where the original assumes cuda:0), --seed (0: ours is always seeded; the
// original's None means unseeded torch/numpy), --resume (absent rather than ''), the DDP flags of
// main_moco.py (accepted, ignored) and eval_causal3dident.py's --target (parsed as a number).
import t from 'tap';
import { Command } from 'commander';
import { evalSyntheticCommand } from '../../src/cli/eval-synthetic';
import { evalRealworldCommand } from '../../src/cli/eval-realworld';
import { evalDownstreamCommand } from '../../src/cli/eval-downstream';
import { evalCausal3DIdentCommand } from '../../src/cli/eval-causal3dident';
import { pretrainCommand } from '../../src/cli/pretrain';

/** The default of each long flag of a command, by flag name. */
function defaults(cmd: Command): Map<string, unknown> {
  return new Map(cmd.options.filter((o) => o.long).map((o) => [o.long!, o.defaultValue]));
}

const ORIGINAL: [string, () => Command, Record<string, unknown>][] = [
  ['eval_synthetic_invariance.py', evalSyntheticCommand, {
    '--dataset': 'imagenet', '--split': 'val', '--model': 'default', '--transform': 'rotation', '--feature-layer': 'backbone',
    '--batch-size': 256, '--num-images': 1000, '--resize': 256, '--crop-size': 224, '--k': undefined,
    '--ckpt-dir': 'models/', '--results-dir': './results/',
  }],
  ['eval_realworld_invariance.py', evalRealworldCommand, {
    '--model': 'default', '--dataset': 'Flickr1024', '--feature-layer': 'backbone', '--resize': 224, '--crop-size': 224,
    '--ckpt-dir': './models/', '--results-dir': './results/', '--data-root': '../data/',
  }],
  ['eval_downstream.py', evalDownstreamCommand, {
    '--model': 'default', '--fuse-mode': 'cat', '--dataset': 'cifar10', '--cv-folds': 5, '--feature-layer': 'backbone',
    '--batch-size': 64, '--resize': 224, '--crop-size': 224, '--ckpt-dir': './models/', '--results-dir': './results',
    '--data-root': '../data/',
  }],
  ['eval_causal3dident.py', evalCausal3DIdentCommand, {
    '--model': 'default', '--fuse-mode': 'cat', '--cv-folds': 5, '--feature-layer': 'backbone', '--batch-size': 64,
    '--resize': 224, '--crop-size': 224, '--ckpt-dir': './models/', '--results-dir': './results/', '--data-root': '../data/',
  }],
  ['main_moco.py', pretrainCommand, {
    '--split': 'train', '--model': 'default', '--arch': 'resnet50', '--workers': 32, '--epochs': 200, '--start-epoch': 0,
    '--batch-size': 256, '--learning-rate': 0.03, '--schedule': [120, 160], '--momentum': 0.9, '--weight-decay': 1e-4,
    '--print-freq': 10, '--moco-dim': 128, '--moco-k': 65536, '--moco-m': 0.999, '--moco-t': 0.07,
  }],
];

for (const [script, make, expected] of ORIGINAL) {
  t.test(`${script}'s defaults`, async (t) => {
    const ours = defaults(make());
    for (const [flag, value] of Object.entries(expected)) {
      t.ok(ours.has(flag), `${flag} exists`);
      t.same(ours.get(flag), value, `${flag} defaults to ${JSON.stringify(value)}`);
    }
  });
}
