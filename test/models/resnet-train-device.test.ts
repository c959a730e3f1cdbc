// Training ResNet-18 and ResNet-50 on each CUDA device of this machine against PyTorch
// (test/helpers/train-device-cases.ts, with the fixtures of test/models/resnet-train.test.ts):
// features, dL/dx and every gradient of the first step, every parameter and running statistic after
// the fixture's steps; every tensor of the network stays on the device.
//
// On the emulated device (test/cuda-emu/addon-emu.test.ts, machines without a GPU) only ResNet-18's
// first step runs (the emulator executes every GPU thread on the host), its parameters afterwards
// compared with the CPU backend's after the same step; a GPU runs the whole fixture (so does
// bench/device/train-check.ts). Skipped, with the reason, where there is no usable CUDA device.
import t from 'tap';
import { cudaInfo } from '../../src/device';
import { tensor } from '../../src/tensor';
import { loadResNet, resnetTrainCase, resnetTrainFixtures } from '../helpers/train-device-cases';

const info = cudaInfo();
if (info.deviceCount === 0) {
  t.pass(`no usable CUDA device (${info.compiled ? info.reason : 'built without the CUDA backend'}); device training is skipped`);
} else {
  for (const d of info.devices) {
    const device = `cuda:${d.index}`;
    const emulated = /emulator/i.test(d.name);
    for (const fx of resnetTrainFixtures()) {
      if (emulated && fx.arch !== 'resnet18') continue;
      const steps = emulated ? 1 : fx.steps;
      t.test(`${fx.arch} on ${device} (${d.name}): ${steps} SGD step(s) against PyTorch`, (t) => resnetTrainCase(t, fx.arch, device, steps));
    }
    t.test(`inputs on another device: a typed error (${device})`, async (t) => {
      const net = await loadResNet('resnet18', device);
      const x = tensor(new Float32Array(2 * 3 * 32 * 32), [2, 3, 32, 32]);
      const xd = x.to(device);
      const g = tensor(new Float32Array(2 * net.featureDim), [2, net.featureDim]);
      try {
        t.throws(() => net.forwardTrain(x), { code: 'ERR_DEVICE_UNAVAILABLE', field: 'x' }, 'images on the CPU');
        const { features, tape } = net.forwardTrain(xd);
        features.dispose();
        t.throws(() => net.backward(tape, g), { code: 'ERR_DEVICE_UNAVAILABLE', field: 'dFeatures' }, 'dL/dfeatures on the CPU');
        tape.dispose();
      } finally {
        for (const v of [x, xd, g]) v.dispose();
        net.dispose();
      }
    });
  }
}
