// Whole networks on each CUDA device of this machine: ResNet-18 from the torch-saved fixture
// checkpoint on the [2, 3, 64, 64] fixture input. fp32 features within 1e-4 (normwise, per row) of
// torch 1.13's float32 features; tf32 and bf16, and bf16 with bfloat16 activations between layers
// (also through the wgmma kernel on compute capability 9.0), within 4x the op tolerances (2e-3, 1.5e-2) of the CPU backend's features, as bench/device/check.ts
// asks of ResNet-50 at 224. Skipped, with the reason, where there is no usable CUDA device; on
// machines without a GPU it runs on the emulated device (test/cuda-emu/addon-emu.test.ts), which
// checks the device code paths end to end, not the hardware.
import t from 'tap';
import { cudaInfo } from '../../src/device';
import { loadFeatureExtractor } from '../../src/eval/model-loader';
import type { ResNetLoadOptions } from '../../src/nn/resnet';
import { scope, tensor } from '../../src/tensor';
import { runsWgmma } from '../helpers/wgmma';
import { fixtureExpected, fixtureInput, materializeCheckpoint, rowErrors } from '../helpers/model-fixtures';

async function features(file: string, opts: ResNetLoadOptions): Promise<Float32Array> {
  const model = await loadFeatureExtractor(file, opts);
  try {
    const x = fixtureInput('x64');
    return scope(() => model.net.features(tensor(x.data, x.shape)));
  } finally {
    model.net.dispose();
  }
}

const info = cudaInfo();
if (info.deviceCount === 0) {
  t.pass(`no usable CUDA device (${info.compiled ? info.reason : 'built without the CUDA backend'}); the device networks are skipped`);
} else {
  for (const d of info.devices) {
    const device = `cuda:${d.index}`;
    t.test(`ResNet-18 on ${device} (${d.name})`, async (t) => {
      const file = await materializeCheckpoint('resnet18-plain');
      const rows = fixtureInput('x64').shape[0]!;
      const torch = fixtureExpected('resnet18-plain.x64.float32.features');
      const fp32 = await features(file, { device });
      const e32 = rowErrors(fp32, torch.data, rows);
      t.ok(e32.every((e) => e < 1e-4), `fp32 vs torch float32: row errors ${e32.map((e) => e.toExponential(1)).join(', ')} (limit 1e-4)`);

      const cpu = await features(file, {});
      const cases: { name: string; opts: ResNetLoadOptions; limit: number }[] = [
        { name: 'tf32', opts: { device, precision: 'tf32' }, limit: 2e-3 * 4 },
        { name: 'tf32, pipelined kernel', opts: { device, precision: 'tf32', convAlgo: 'mma-pipelined' }, limit: 2e-3 * 4 },
        { name: 'bf16', opts: { device, precision: 'bf16' }, limit: 1.5e-2 * 4 },
        { name: 'bf16, bfloat16 activations', opts: { device, precision: 'bf16', activations: 'bfloat16' }, limit: 1.5e-2 * 4 },
        // Hopper's warpgroup kernel (sm_90a), where the device is compute capability 9.0.
        ...(runsWgmma(device)
          ? [{ name: 'bf16, bfloat16 activations, wgmma kernel', opts: { device, precision: 'bf16', activations: 'bfloat16', convAlgo: 'wgmma' } as ResNetLoadOptions, limit: 1.5e-2 * 4 }]
          : []),
      ];
      for (const c of cases) {
        const e = rowErrors(await features(file, c.opts), cpu, rows);
        t.ok(e.every((v) => v < c.limit), `${c.name} vs the CPU backend: row errors ${e.map((v) => v.toExponential(1)).join(', ')} (limit ${c.limit})`);
      }
      const simt16 = await features(file, { device, convAlgo: 'simt-bk16' });
      t.same(Array.from(simt16), Array.from(fp32), 'fp32 simt-bk16: the same bits as auto');
    });
  }
}
