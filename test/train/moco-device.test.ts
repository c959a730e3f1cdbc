// MoCo v2 training steps on each CUDA device of this machine against PyTorch
// (test/helpers/train-device-cases.ts, with the fixtures of test/train/moco.test.ts: one GPU, and
// DDP on two GPUs with per-GPU batch norm and shuffle BN): each step's loss, Acc@1 / Acc@5 (and each
// GPU's), every parameter and running statistic of both encoders after the last step, the queue and
// its pointer. The model, its queue and every gradient stay on the device.
//
// On the emulated device (test/cuda-emu/addon-emu.test.ts, machines without a GPU) the one-GPU
// fixture's first step runs, against PyTorch's first-step loss and accuracies; a GPU runs both
// fixtures whole (so does bench/device/train-check.ts). Skipped, with the reason, where there is no
// usable CUDA device.
import t from 'tap';
import { cudaInfo } from '../../src/device';
import { SGD } from '../../src/optim/sgd';
import { tensor } from '../../src/tensor';
import { fixtureMoco, mocoTrainCase, mocoTrainFixtures } from '../helpers/train-device-cases';

const info = cudaInfo();
if (!info.devices.some((d) => d.usable)) {
  t.pass(`no usable CUDA device (${info.compiled ? info.reason : 'built without the CUDA backend'}); MoCo on a device is skipped`);
} else {
  for (const d of info.devices) {
    const device = `cuda:${d.index}`;
    const emulated = /emulator/i.test(d.name);
    for (const fx of mocoTrainFixtures()) {
      if (emulated && fx.split) continue;
      const steps = emulated ? 1 : fx.steps;
      t.test(`MoCo v2 on ${device} (${d.name}), ${fx.gpus} emulated GPU(s): ${steps} step(s) against PyTorch`,
        (t) => mocoTrainCase(t, fx.split, device, steps));
    }
    t.test(`images on another device: a typed error (${device})`, async (t) => {
      const moco = await fixtureMoco(device);
      const sgd = new SGD({ lr: 0.1 });
      const host = tensor(new Float32Array(4 * 3 * 32 * 32), [4, 3, 32, 32]);
      try {
        t.throws(() => moco.step(host, host, sgd), { code: 'ERR_DEVICE_UNAVAILABLE', field: 'im_q' });
      } finally {
        host.dispose();
        moco.dispose();
        sgd.dispose();
      }
    });
  }
}

