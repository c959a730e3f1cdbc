/**
 * The CUDA backend end to end on the emulated device, on machines without a GPU.
 *
 * Builds the emulated-device addon (SSL_INV_CUDA_EMU=1 scripts/build-native.js: every CUDA source
 * compiled as host C++ against native/cuda/emu, the runtime and cuBLAS emulated, into
 * build-emu/Release/ssl_inv.node), then runs the test files that use a CUDA device in a child tap
 * with SSL_INV_ADDON pointing at it, so `cuda:0` is the emulator: the op table in every precision
 * and kernel variant, ResNet-18 in fp32/tf32/bf16 and bf16 activations, the training ops (convolution
 * and layer backward, SGD, the MoCo loss's ranks and row losses), a ResNet-18 training step and a
 * MoCo v2 step against PyTorch, the device views, the covariance's SYRK variants, the probes' device
 * objective and CLI, the CLI's --device cuda, and `ssl-inv selftest`. Then as other cards
 * (SSL_INV_CUDA_EMU_CC): an 8.6 one with 99 KiB of shared memory per block runs the MoCo tests, the
 * device unit tests and the self-test; a 7.5 one, which the build has no code for, is listed but refused with the
 * reason, and 'auto' is the CPU; one whose kernel image is missing is refused at its first kernel.
 * That runs the bindings, the allocator, the launchers' argument checks and dispatch, and the
 * TypeScript device code as they run on a GPU; it verifies logic, not the hardware
 * (bench/device/run.sh does).
 *
 * Skipped where a real CUDA device is present (the same files run on it directly), or where cmake or
 * a C++ compiler is missing. test/probes/search.test.ts is left out: its L-BFGS-B chains on the
 * device launch hundreds of thousands of small kernels, which the emulator runs too slowly for the
 * default suite (the 45 C x 5 fold chain alone takes about 4.5 minutes there; it passes).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cudaInfo } from '../../src/device';

const root = path.resolve(__dirname, '..', '..');
const addon = path.join(root, 'build-emu', 'Release', 'ssl_inv.node');
const FILES = [
  'test/ops/cuda-ops.test.ts',
  'test/ops/fuzz-ops.test.ts',
  'test/ops/gather-rows.test.ts',
  'test/ops/normalize-images.test.ts',
  'test/data/device-input.test.ts',
  'test/models/resnet-device.test.ts',
  'test/backward/layers-device.test.ts',
  'test/backward/conv-device.test.ts',
  'test/models/resnet-train-device.test.ts',
  'test/train/moco-accuracy.test.ts',
  'test/train/moco-device.test.ts',
  'test/train/step-views.test.ts',
  'test/cli/pretrain-device.test.ts',
  'test/transforms/views-device.test.ts',
  'test/probes/device.test.ts',
  'test/unit/device.test.ts',
  'test/linalg/linalg.test.ts',
  'test/cli/features.test.ts',
  'test/cli/views.test.ts',
  'test/probes/cli.test.ts',
  'test/cli/selftest.test.ts',
];

const has = (cmd: string) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
const skip = cudaInfo().devices.some((d) => d.usable) ? 'a CUDA device is present: the device tests run on it directly'
  : !has('cmake') ? 'cmake not found (the emulated-device addon builds with cmake-js)'
  : !has(process.env.CXX ?? 'c++') ? 'no host C++ compiler'
  : false;

/** The environment of a fresh tap run: without the variables of the tap run this test is part of. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(TAP|_TAPJS|NODE_OPTIONS$)/.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

t.test('the emulated-device addon', { skip }, async (t) => {
  const build = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.js')], {
    cwd: root, encoding: 'utf8', env: childEnv({ SSL_INV_CUDA_EMU: '1' }), timeout: 1_800_000,
  });
  t.equal(build.status, 0, `builds${build.status === 0 ? '' : `:\n${(build.stderr + build.stdout).slice(-3000)}`}`);
  if (build.status !== 0) return;
  t.ok(fs.existsSync(addon), 'build-emu/Release/ssl_inv.node exists');
  // The child runs must see the emulator as cuda:0, or they would pass by skipping.
  const probe = spawnSync(process.execPath, ['-e',
    "const i = require('./lib/device').cudaInfo(); console.log(JSON.stringify(i.devices.map((d) => d.name)))"], {
    cwd: root, encoding: 'utf8', env: childEnv({ SSL_INV_ADDON: addon }),
  });
  t.equal(probe.stdout.trim(), JSON.stringify(['CUDA emulator (host)']), `SSL_INV_ADDON loads it: one device, the emulator${probe.status === 0 ? '' : `:\n${probe.stderr}`}`);

  for (const file of FILES) {
    t.test(`${file} on the emulated cuda:0`, async (t) => {
      const tap = path.join(root, 'node_modules', '.bin', 'tap');
      const run = spawnSync(tap, [file, '--reporter=tap'], {
        cwd: root, encoding: 'utf8', env: childEnv({ SSL_INV_ADDON: addon }), timeout: 1_200_000, maxBuffer: 64 << 20,
      });
      const out = run.stdout ?? '';
      // tap's totals line: "# { total: T, pass: P, fail: F, skip: S }" (absent keys are zero).
      const totals = /^# \{ total: (\d+)(.*)\}$/m.exec(out);
      const count = (key: string) => Number(new RegExp(`${key}: (\\d+)`).exec(totals?.[2] ?? '')?.[1] ?? 0);
      t.ok(totals, `the run reports its totals${totals ? '' : `:\n${(out + (run.stderr ?? '')).slice(-3000)}`}`);
      if (!totals) return;
      const failed = [...out.matchAll(/^\s*not ok \d+ - (.*)$/gm)].map((m) => m[1]!.replace(/ # time=.*$/, ''));
      for (const f of failed) t.fail(f);
      t.equal(count('fail'), 0, `${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped`);
      t.ok(count('pass') > 0, 'the file made checks on the emulated device');
      t.equal(run.status, 0, `tap exits 0${run.status === 0 ? '' : ` (status ${run.status}, signal ${run.signal})`}`);
    });
  }

  // The emulator posing as other cards (native/cuda/emu/runtime_emu.h): what the addon says and does.
  const observe = (env: Record<string, string>) => {
    const r = spawnSync(process.execPath, [path.join(root, 'test', 'helpers', 'emu-card-observe.js')], {
      cwd: root, encoding: 'utf8', env: childEnv({ SSL_INV_ADDON: addon, ...env }),
    });
    return { status: r.status, out: r.status === 0 ? JSON.parse(r.stdout) : undefined, stderr: r.stderr };
  };
  t.test('as a compute capability 8.6 card (99 KiB of shared memory per block): usable; MoCo loss up to dim 128', async (t) => {
    const { status, out, stderr } = observe({ SSL_INV_CUDA_EMU_CC: '8.6' });
    t.equal(status, 0, stderr);
    t.match(out.info.devices[0], { computeCapability: '8.6', usable: true, reason: '', sharedMemoryPerBlock: 99 * 1024 });
    t.same([out.auto, out.explicit, out.move], [{ ok: 'cuda:0' }, { ok: 'cuda:0' }, { ok: [1, 2, 3, 4] }]);
    // The same bits as on sm_90 (227 KiB: 128-row blocks) and sm_80 (163 KiB: 64-row blocks).
    const h100 = observe({}), a100 = observe({ SSL_INV_CUDA_EMU_CC: '8.0' });
    t.ok(out.moco128.ok && out.moco128.ok.loss > 0.1, `dim 128 in 32-row blocks: loss ${out.moco128.ok?.loss}`);
    t.same(out.moco128, h100.out.moco128, 'the loss and dq bit for bit as on a 9.0 card');
    t.same(a100.out.moco128, h100.out.moco128, 'and on an 8.0 card');
    t.same(a100.out.moco200, h100.out.moco200, 'dim 200 (64- and 16-row blocks): 8.0 as 9.0');
    t.match(out.moco200, { code: 'ERR_DEVICE_UNAVAILABLE', message: /dim 200 needs 160 KiB of shared memory per block; .* allows 99 KiB/ });
    // The device ops that choose by card (no wgmma, shorter MoCo blocks) against the CPU and PyTorch.
    const tap = path.join(root, 'node_modules', '.bin', 'tap');
    for (const file of ['test/train/moco-accuracy.test.ts', 'test/train/moco-device.test.ts', 'test/unit/device.test.ts']) {
      const run = spawnSync(tap, [file, '--reporter=tap'], {
        cwd: root, encoding: 'utf8', env: childEnv({ SSL_INV_ADDON: addon, SSL_INV_CUDA_EMU_CC: '8.6' }), timeout: 1_200_000, maxBuffer: 64 << 20,
      });
      const failed = [...(run.stdout ?? '').matchAll(/^\s*not ok \d+ - (.*)$/gm)].map((m) => m[1]!);
      t.same(failed, [], `${file} as 8.6`);
      t.equal(run.status, 0, `${file} as 8.6: tap exits 0`);
    }
    // Every op kind and precision against the CPU, as this card.
    const selftest = spawnSync(process.execPath, [path.join(root, 'bin', 'ssl-inv.js'), 'selftest'], {
      cwd: root, encoding: 'utf8', env: childEnv({ SSL_INV_ADDON: addon, SSL_INV_CUDA_EMU_CC: '8.6' }), timeout: 1_200_000,
    });
    t.equal(selftest.status, 0, selftest.stderr.slice(-2000));
    t.match(selftest.stdout, /compute capability 8\.6\): (\d+) of \1 checks agree with the CPU/);
  });
  t.test('as a compute capability 7.5 card: listed, not usable, said why; auto is the CPU', async (t) => {
    const { status, out, stderr } = observe({ SSL_INV_CUDA_EMU_CC: '7.5' });
    t.equal(status, 0, stderr);
    const why = /cuda:0 \(CUDA emulator \(host\), compute capability 7\.5\) cannot run this build's kernels, compiled for the CUDA architectures 80-real,90-real,90-virtual: they need compute capability 8\.0 or later/;
    t.match(out.info, { deviceCount: 1, devices: [{ usable: false, reason: why }], reason: why });
    t.same(out.auto, { ok: 'cpu' });
    t.match(out.explicit, { code: 'ERR_DEVICE_UNAVAILABLE', message: why });
    t.match(out.move, { code: 'ERR_DEVICE_UNAVAILABLE', message: why });
    t.match(out.moveNative, { code: 'ERR_DEVICE_UNAVAILABLE', message: why }, 'the native layer refuses it too');
    const cli = spawnSync(process.execPath, [path.join(root, 'bin', 'ssl-inv.js'), 'selftest'], {
      cwd: root, encoding: 'utf8', env: childEnv({ SSL_INV_ADDON: addon, SSL_INV_CUDA_EMU_CC: '7.5' }),
    });
    t.equal(cli.status, 1);
    t.match(cli.stderr, /ERR_DEVICE_UNAVAILABLE: .*no CUDA device to test \(cuda:0 .*compute capability 7\.5\) cannot run/);
  });
  t.test('a card the build has no code for, found at the first kernel: refused from then on, the process goes on', async (t) => {
    const { status, out, stderr } = observe({ SSL_INV_CUDA_EMU_NO_KERNEL_IMAGE: '1' });
    t.equal(status, 0, stderr);
    t.equal(out.info.devices[0].usable, true, 'the architecture rule cannot tell');
    const why = /cuda:0 \(CUDA emulator \(host\), compute capability 9\.0\) has no code in this build \(no kernel image is available/;
    t.match(out.move, { code: 'ERR_DEVICE_UNAVAILABLE', message: why });
    t.match(out.moveAgain, { code: 'ERR_DEVICE_UNAVAILABLE', message: why });
  });
});
