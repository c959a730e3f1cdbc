// Whether a device runs the sm_90a wgmma convolution (native/cuda/conv2d_wgmma.cu): a CUDA device of
// compute capability 9.0 (H100, H200; the emulated device reports 9.0 too). SSL_INV_SKIP_WGMMA=1 says
// no everywhere: bench/device/run.sh sets it when its first look at the kernel
// (bench/device/wgmma-smoke.ts) failed, so that one faulting kernel cannot take the rest of a GPU run
// down with it.
import { cudaInfo } from '../../src/device';

export function runsWgmma(device: string): boolean {
  if (!device.startsWith('cuda') || process.env.SSL_INV_SKIP_WGMMA === '1') return false;
  const index = Number(device.split(':')[1] ?? 0);
  return cudaInfo().devices.find((d) => d.index === index)?.computeCapability === '9.0';
}
