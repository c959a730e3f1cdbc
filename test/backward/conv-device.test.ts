// The convolution's backward ops on each CUDA device (native/cuda/conv2d_backward.cu through
// src/backward/conv.ts), against the same ops on the CPU (which test/backward/conv-backward.test.ts
// checks against float64 references and PyTorch):
//   1. dx (plain and with the fused residual + ReLU-mask epilogue) and dW for a table of shapes: the
//      ResNet kinds (7x7/2 stem with C = 3, 3x3/1, 3x3/2 with odd H, 1x1/1, 1x1/2 with odd H) and
//      odd ones (K = 3, K and C past a tile, rectangular kernels and strides, windows only in the
//      padding, several split-K slices of wgrad, N = 0). Relative error max |dev - cpu| / max |cpu|
//      <= 1e-5; the two sum in different orders, so not bit for bit. Results stay on the device.
//   2. the same bits from a second run (no atomics; wgrad's slices are added in a fixed order);
//   3. bad calls: the CPU path's codes (ERR_SHAPE_MISMATCH, ERR_DTYPE_MISMATCH, ERR_INVALID_ARGUMENT)
//      for device tensors, and ERR_DEVICE_UNAVAILABLE for a CPU tensor mixed with device tensors,
//      in either position.
// Skipped, with the reason, where there is no usable CUDA device; test/cuda-emu/addon-emu.test.ts
// runs it on the emulated device on machines without a GPU.
import t from 'tap';
import { cudaInfo } from '../../src/device';
import { runConvBackwardDevice } from './conv-device-cases';

const info = cudaInfo();
if (!info.devices.some((d) => d.usable)) {
  t.pass(`no usable CUDA device (${info.compiled ? info.reason : 'built without the CUDA backend'}); the device backward ops are skipped`);
} else {
  for (const d of info.devices) {
    const device = `cuda:${d.index}`;
    t.test(`convolution backward on ${device} (${d.name})`, async (tt) => runConvBackwardDevice(tt, device));
  }
}
