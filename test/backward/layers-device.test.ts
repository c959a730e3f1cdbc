// The layer training primitives and the SGD step on each CUDA device (native/cuda/layer_backward.cu
// and native/cuda/sgd.cu through src/backward/layers.ts and src/optim/sgd.ts), against the same ops
// on the CPU (which test/backward/layers.test.ts and sgd.test.ts check against float64 references
// and PyTorch), on the same inputs:
//   1. batch-norm forward (plain, ReLU, residual + ReLU, groups 1/2/4, |mean| >> std) and backward
//      (plain, with the ReLU mask holding NaN and -0, groups): norm-wise within relative 1e-5 of the
//      CPU (the float64 reductions run in another order), and the same bits from a second run;
//   2. reluBackward, maxPool2dBackward (ties, NaN, padding borders, stride 2 with odd H),
//      globalAvgPoolBackward: the CPU's bits; sumRows within 1e-5 and run-to-run bits;
//   3. momentumUpdate(InPlace), sgdStep in every variant and the SGD class (step and stepInPlace,
//      3 steps with momentum and weight decay, buffers created on the device): the CPU's bits
//      (NaN payloads aside: a GPU returns one canonical NaN);
//   4. bad calls on device tensors: the CPU path's codes (ERR_SHAPE_MISMATCH, ERR_DTYPE_MISMATCH,
//      ERR_INVALID_ARGUMENT), and ERR_DEVICE_UNAVAILABLE for a CPU tensor mixed in, in any position.
// Results stay on the device (checked). Skipped, with the reason, where there is no usable CUDA
// device; test/cuda-emu/addon-emu.test.ts runs it on the emulated device on machines without a GPU.
import t from 'tap';
import { cudaInfo } from '../../src/device';
import { runLayerBackwardDevice } from './layers-device-cases';

const info = cudaInfo();
if (!info.devices.some((d) => d.usable)) {
  t.pass(`no usable CUDA device (${info.compiled ? info.reason : 'built without the CUDA backend'}); the device layer ops are skipped`);
} else {
  for (const d of info.devices) runLayerBackwardDevice(t, `cuda:${d.index}`, `cuda:${d.index} (${d.name})`);
}
