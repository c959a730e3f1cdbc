/**
 * The SGD configurations the optimiser is tested in: MoCo v2's, and one per branch of
 * torch.optim.SGD's update (Nesterov, dampening, no momentum, no weight decay). Shared by the CPU
 * test (test/backward/sgd.test.ts, which adds lr 0) and the device cases (layers-device-cases.ts).
 */
import type { SgdOptions } from '../../src/optim/sgd';

export const SGD_VARIANTS: readonly { name: string; o: SgdOptions }[] = [
  { name: 'MoCo v2 (momentum 0.9, wd 1e-4)', o: { lr: 0.03, momentum: 0.9, weightDecay: 1e-4 } },
  { name: 'nesterov', o: { lr: 0.05, momentum: 0.9, weightDecay: 1e-4, nesterov: true } },
  { name: 'dampening 0.1', o: { lr: 0.1, momentum: 0.9, weightDecay: 1e-4, dampening: 0.1 } },
  { name: 'no momentum', o: { lr: 0.03, weightDecay: 1e-4 } },
  { name: 'no weight decay', o: { lr: 0.03, momentum: 0.9 } },
];
