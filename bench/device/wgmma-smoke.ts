/**
 * A first look at the sm_90a wgmma convolution on a GPU, in a process of its own, before the device
 * check uses it: a kernel that faults would leave the CUDA context unusable for everything after it
 * in the same process. bench/device/run.sh runs this first and, when it fails, sets
 * SSL_INV_SKIP_WGMMA=1 so that check.ts, conv-tune.ts and the op table leave the wgmma kernel out and
 * the rest of the run still measures what it can.
 *
 *   node build-bench/bench/device/wgmma-smoke.js [--device cuda:0]
 *
 * Each case (one per block width N = 64, 128, 256; 1x1 and 3x3; a partial M tile) runs
 * ops.conv2dBf16Storage through algo 'wgmma' and 'auto' (mma.sync) on bf16-exact inputs and checks
 * both against the float64 sum, per element within 2^-8 |ref| + 2e-5 sum |x||w| (the bf16 output
 * rounding plus fp32 accumulation; the op table's bound). Prints TAP lines; exit 1 on any failure,
 * 0 with a skip line where the device is not compute capability 9.0.
 */
import { cudaInfo, resolveDevice } from '../../src/device';
import * as ops from '../../src/ops';
import { tensor, Tensor } from '../../src/tensor';
import { ConvCase, conv2dRef, outSize, randomArray, roundBf16, toNchw, toNhwc } from '../../test/helpers/reference';

const argv = process.argv.slice(2);
const at = argv.indexOf('--device');
const DEVICE = resolveDevice(at >= 0 ? argv[at + 1]! : 'cuda:0', '--device');
let failures = 0;

function onDevice(a: Float32Array, shape: number[]): Tensor {
  const host = tensor(a, shape);
  try {
    return host.to(DEVICE);
  } finally {
    host.dispose();
  }
}

function run(p: ConvCase, seed: number): void {
  const P = outSize(p.h, p.r, p.stride, p.pad), Q = outSize(p.w, p.s, p.stride, p.pad);
  const x = roundBf16(randomArray(p.n * p.c * p.h * p.w, seed)), w = roundBf16(randomArray(p.k * p.c * p.r * p.s, seed + 1, 0.5));
  const bias = randomArray(p.k, seed + 2);
  const ref = conv2dRef(p, x, w, bias);
  const keep: Tensor[] = [];
  try {
    const xd = onDevice(toNhwc(x, p.n, p.c, p.h, p.w), [p.n, p.h, p.w, p.c]);
    const raw = onDevice(w, [p.k, p.c, p.r, p.s]);
    const packed = ops.packConvWeights(raw);
    const bd = onDevice(bias, [p.k]);
    keep.push(xd, raw, packed, bd);
    const g: ops.ConvGeometry = { outChannels: p.k, kernel: [p.r, p.s], stride: [p.stride, p.stride], padding: [p.pad, p.pad] };
    for (const algo of ['wgmma', 'auto'] as ops.ConvAlgo[]) {
      const y = ops.conv2dBf16Storage(xd, packed, g, { bias: bd, relu: false, algo });
      keep.push(y);
      const out = toNchw(y.toFloat32Array(), p.n, p.k, P, Q);
      let bad = 0, worst = 0;
      for (let j = 0; j < out.length; j++) {
        const bound = Math.abs(ref.y[j]!) * 2 ** -8 + 2e-5 * ref.mag[j]!;
        const err = Math.abs(out[j]! - ref.y[j]!);
        if (!(err <= bound)) bad++;
        worst = Math.max(worst, err / bound);
      }
      const name = `${algo} ${p.r}x${p.s}/${p.stride} C=${p.c} K=${p.k} ${p.n}x${p.h}x${p.w}: ${bad} of ${out.length} outside the bound (worst ${worst.toFixed(3)} of it)`;
      process.stdout.write(`${bad === 0 ? 'ok' : 'not ok'} - ${name}\n`);
      if (bad) failures++;
    }
  } finally {
    for (const t of keep) t.dispose();
  }
}

function main(): void {
  const cc = cudaInfo().devices[Number(DEVICE.split(':')[1])]?.computeCapability;
  if (cc !== '9.0') {
    process.stdout.write(`ok - # SKIP ${DEVICE} is compute capability ${cc ?? '(none)'}; the wgmma kernel runs on 9.0 only\n`);
    return;
  }
  const cases: ConvCase[] = [
    { n: 2, c: 64, h: 9, w: 9, k: 64, r: 3, s: 3, stride: 1, pad: 1 },
    { n: 1, c: 128, h: 10, w: 13, k: 128, r: 1, s: 1, stride: 1, pad: 0 },
    { n: 2, c: 32, h: 11, w: 11, k: 256, r: 3, s: 3, stride: 2, pad: 1 },
  ];
  cases.forEach((p, i) => run(p, 7000 + 10 * i));
  process.stdout.write(`# ${failures} failure(s)\n`);
  process.exitCode = failures ? 1 : 0;
}

main();
