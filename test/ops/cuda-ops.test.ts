// The op table on each CUDA device of this machine, in fp32, tf32 and bf16 for the convolutions,
// against the same float64 references as the CPU backend. Skipped, with the reason, where there is
// no usable CUDA device (CI and the development machines): there the CUDA kernels' logic is checked
// through the host emulator (test/cuda-emu) and only a GPU run verifies them.
import t from 'tap';
import { cudaInfo } from '../../src/device';
import { runOpTable } from './op-table';

const info = cudaInfo();
if (!info.devices.some((d) => d.usable)) {
  t.pass(`no usable CUDA device (${info.compiled ? info.reason : 'built without the CUDA backend'}); the CUDA op table is skipped`);
} else {
  for (const d of info.devices) {
    t.test(`cuda:${d.index} (${d.name})`, async (t) => {
      runOpTable(t, { device: `cuda:${d.index}`, precisions: ['fp32', 'tf32', 'bf16'] });
    });
  }
}
