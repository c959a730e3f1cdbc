// Devices in the API: names, the CUDA backend's report, moving tensors, and the errors a machine
// without a usable GPU gives (never a crash, never a silent fall-back to the CPU). On a GPU machine
// the same tests check the round trip through the device instead.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { clearConvTuning, convAutotune, convTuning, cudaAvailable, cudaInfo, defaultDevice, DEVICE_ENV, pickAutoDevice, resolveDevice, toDevice } from '../../src/device';
import { loadNamedModel } from '../../src/eval/models';
import { torchSave } from '../../src/io/torch-save';
import { ResNetFeatures } from '../../src/nn/resnet';
import { torchvisionInitStateDict } from '../../src/nn/torchvision-init';
import * as ops from '../../src/ops';
import { empty, tensor, zeros } from '../../src/tensor';
import { randomArray } from '../helpers/reference';
import { writeRowsCases } from '../helpers/write-rows-cases';

const info = cudaInfo();

t.test('cudaInfo reports the backend and the devices', async (t) => {
  t.type(info.compiled, 'boolean');
  t.equal(info.devices.length, info.deviceCount);
  if (!cudaAvailable()) t.ok(info.reason.length > 0, `says why there is no usable device: ${info.reason}`);
  else t.equal(info.reason, '', 'no reason while a device is usable');
  if (info.compiled) t.match(info.architectures, /^(\d+[af]?(-real|-virtual)?)(,\d+[af]?(-real|-virtual)?)*$|^native$|^all/, `architectures: ${info.architectures}`);
  else t.equal(info.architectures, '');
  if (info.compiled) t.match(info.runtimeVersion, /^\d+\.\d+$/, `CUDA runtime ${info.runtimeVersion}`);
  else t.same([info.runtimeVersion, info.driverVersion], ['', '']);
  if (cudaAvailable()) t.match(info.driverVersion, /^\d+\.\d+$/, `driver ${info.driverVersion}`);
  for (const d of info.devices) {
    t.match(d.computeCapability, /^\d+\.\d+$/);
    t.type(d.usable, 'boolean');
    t.ok(d.sharedMemoryPerBlock >= 48 * 1024, `${d.name}: ${d.sharedMemoryPerBlock} bytes of shared memory per block`);
    t.equal(d.reason === '', d.usable, 'a reason exactly when not usable');
  }
});

t.test("the convolution's run-time tuning switch (convAutotune) and its table (convTuning)", async (t) => {
  t.type(convAutotune(), 'boolean');
  t.throws(() => convAutotune('yes' as unknown as boolean), { code: 'ERR_INVALID_ARGUMENT' }, 'a non-boolean is refused');
  if (!info.compiled) {
    t.equal(convAutotune(), false, 'no CUDA backend: off');
    t.throws(() => convAutotune(true), { code: 'ERR_DEVICE_UNAVAILABLE' }, 'and cannot be switched on');
    t.same(convTuning(), [], 'nothing tuned');
    return;
  }
  const was = convAutotune();
  t.equal(convAutotune(!was), was, 'setting returns the previous value');
  t.equal(convAutotune(), !was, 'and the new one holds');
  convAutotune(was);
  clearConvTuning();
  t.same(convTuning(), [], 'clearConvTuning leaves no record');
  // The start-up value: SSL_INV_CONV_AUTOTUNE=0 off, 1 on; unset, on with a real GPU runtime and off
  // in the emulated-device build (timings mean nothing there).
  const addon = process.env.SSL_INV_ADDON ?? path.join(__dirname, '..', '..', 'build', 'Release', 'ssl_inv.node');
  const startup = (v: string | undefined) => {
    const env = { ...process.env };
    if (v === undefined) delete env.SSL_INV_CONV_AUTOTUNE; else env.SSL_INV_CONV_AUTOTUNE = v;
    const r = spawnSync(process.execPath, ['-e', `process.stdout.write(String(require(${JSON.stringify(addon)}).convAutotune()))`], { env, encoding: 'utf8' });
    return r.stdout;
  };
  t.equal(startup('0'), 'false', 'SSL_INV_CONV_AUTOTUNE=0: off');
  t.equal(startup('1'), 'true', 'SSL_INV_CONV_AUTOTUNE=1: on');
  t.equal(startup(undefined), info.devices.some((d) => /emulator/i.test(d.name)) ? 'false' : 'true', 'unset: on, except in the emulated-device build');
});

t.test('device names', async (t) => {
  t.equal(resolveDevice('cpu'), 'cpu');
  for (const bad of ['gpu', 'cuda:', 'cuda:x', 'CUDA', 'cuda:0:1', '']) {
    t.throws(() => resolveDevice(bad), { code: 'ERR_INVALID_ARGUMENT' }, `'${bad}' is not a device name`);
  }
  t.throws(() => resolveDevice(`cuda:${info.deviceCount}`), { code: 'ERR_DEVICE_UNAVAILABLE' }, 'one past the last device');
  if (cudaAvailable()) t.equal(resolveDevice('cuda'), 'cuda:0');
  else t.throws(() => resolveDevice('cuda'), { code: 'ERR_DEVICE_UNAVAILABLE', message: /cuda/ });
});

t.test("'auto': SSL_INV_DEVICE when set, else the first usable GPU, else the CPU", async (t) => {
  let probes = 0;
  // Devices by usability: gpus(true, false) is a usable cuda:0 and an unusable cuda:1.
  const gpus = (...usable: boolean[]) => () => {
    probes++;
    return { devices: usable.map((u, index) => ({ index, name: `gpu${index}`, computeCapability: u ? '9.0' : '7.0', multiprocessors: 1,
      totalMemory: 1, sharedMemoryPerBlock: 1, usable: u, reason: u ? '' : 'too old' })) };
  };
  t.equal(pickAutoDevice(undefined, gpus()), 'cpu', 'no GPU: the CPU');
  t.equal(pickAutoDevice(undefined, gpus(true, true)), 'cuda:0', 'GPUs: the first');
  t.equal(pickAutoDevice(undefined, gpus(false, true)), 'cuda:1', 'the first that this build runs on');
  t.equal(pickAutoDevice(undefined, gpus(false)), 'cpu', 'only a GPU this build cannot run on: the CPU');
  t.equal(pickAutoDevice('', gpus(true)), 'cuda:0', 'an empty variable is unset');
  t.equal(pickAutoDevice(' auto ', gpus(true)), 'cuda:0', "'auto' in the variable is the probe's answer");
  probes = 0;
  t.equal(pickAutoDevice('cpu', gpus(true)), 'cpu', 'the variable wins over a present GPU');
  t.equal(pickAutoDevice(' cuda:1', gpus()), 'cuda:1', 'and is passed on for resolveDevice to check');
  t.equal(probes, 0, 'with an override the driver is not probed');

  const saved = process.env[DEVICE_ENV];
  t.teardown(() => { if (saved === undefined) delete process.env[DEVICE_ENV]; else process.env[DEVICE_ENV] = saved; });
  delete process.env[DEVICE_ENV];
  t.equal(defaultDevice(), cudaAvailable() ? 'cuda:0' : 'cpu', 'this machine');
  t.equal(resolveDevice('auto'), defaultDevice(), "resolveDevice('auto') is the default device");
  process.env[DEVICE_ENV] = 'cpu';
  t.equal(resolveDevice('auto'), 'cpu');
  process.env[DEVICE_ENV] = 'gpu';
  t.throws(() => resolveDevice('auto'), { code: 'ERR_INVALID_ARGUMENT', field: DEVICE_ENV, message: /SSL_INV_DEVICE.*'gpu'/ }, 'a bad value names the variable');
  process.env[DEVICE_ENV] = `cuda:${info.deviceCount}`;
  t.throws(() => defaultDevice(), { code: 'ERR_DEVICE_UNAVAILABLE', field: DEVICE_ENV }, 'a device that is not there names the variable');
  t.equal(resolveDevice('cpu'), 'cpu', 'an explicit device ignores the variable');
});

t.test('tensors move between devices, or say why they cannot', async (t) => {
  const x = tensor(randomArray(30, 1), [2, 3, 5]);
  const same = x.to('cpu');
  t.not(same, x, 'to() returns a copy');
  t.same(Array.from(same.toFloat32Array()), Array.from(x.toFloat32Array()));
  if (cudaAvailable()) {
    const d = toDevice(x, 'cuda');
    t.equal(d.device, 'cuda:0');
    t.same(d.shape, [2, 3, 5]);
    t.same(Array.from(d.toFloat32Array()), Array.from(x.toFloat32Array()), 'the device copy reads back bit for bit');
    const z = zeros('float64', [7], 'cuda');
    t.same(Array.from(z.toArray() as Float64Array), new Array(7).fill(0), 'zeros on the device');
    const y = ops.relu(d);
    t.equal(y.device, 'cuda:0', 'ops keep results on the device of their input');
    t.throws(() => ops.add(d, x), { code: 'ERR_DEVICE_UNAVAILABLE' }, 'mixing devices in one op is refused');
  } else {
    t.throws(() => x.to('cuda'), { code: 'ERR_DEVICE_UNAVAILABLE' });
    t.throws(() => empty('float32', [4], 'cuda:0'), { code: 'ERR_DEVICE_UNAVAILABLE' });
    t.throws(() => zeros('float32', [4], 'cuda'), { code: 'ERR_DEVICE_UNAVAILABLE' });
  }
});

t.test('writeRows on the device: one strided copy from the host, checked before it moves a byte',
  { skip: !cudaAvailable() && 'no CUDA device (the CPU cases run in tensor.test.ts)' }, async (t) => {
    writeRowsCases(t, 'cuda:0');
  });

t.test('named models pass their arithmetic to every part', async (t) => {
  const ckptDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-named-'));
  t.teardown(() => fs.rmSync(ckptDir, { recursive: true, force: true }));
  await torchSave(path.join(ckptDir, 'a.pth.tar'), torchvisionInitStateDict('resnet18', 1));
  await torchSave(path.join(ckptDir, 'b.pth.tar'), torchvisionInitStateDict('resnet18', 2));
  await t.rejects(loadNamedModel('a+b', { ckptDir, precision: 'bf16', activations: 'bfloat16' }), { code: 'ERR_DEVICE_UNAVAILABLE' }, 'bf16 on the CPU');
  if (!cudaAvailable()) return;
  const m = await loadNamedModel('a+b', { ckptDir, device: 'cuda', precision: 'bf16', activations: 'bfloat16' });
  try {
    t.same(m.parts.map((p) => [p.model.net.device, p.model.net.precision, p.model.net.activations]),
      [['cuda:0', 'bf16', 'bfloat16'], ['cuda:0', 'bf16', 'bfloat16']]);
  } finally {
    m.dispose();
  }
});

t.test('tf32 and bf16 need a CUDA device', async (t) => {
  const x = tensor(new Float32Array(2 * 4 * 4 * 3), [2, 4, 4, 3]);
  const w = ops.packConvWeights(tensor(new Float32Array(8 * 3 * 3 * 3), [8, 3, 3, 3]));
  const g: ops.ConvGeometry = { outChannels: 8, kernel: [3, 3], stride: [1, 1], padding: [1, 1] };
  t.throws(() => ops.conv2d(x, w, g, { precision: 'tf32' }), { code: 'ERR_DEVICE_UNAVAILABLE' });
  t.throws(() => ops.conv2d(x, w, g, { precision: 'fp16' as ops.Precision }), { code: 'ERR_INVALID_ARGUMENT' });
  t.ok(ops.conv2d(x, w, g, { precision: 'fp32' }), 'fp32 runs on the CPU');
  await t.rejects(ResNetFeatures.load('resnet18', () => new Float32Array(1), { precision: 'bf16' }), { code: 'ERR_DEVICE_UNAVAILABLE' });
  await t.rejects(ResNetFeatures.load('resnet18', () => new Float32Array(1), { convAlgo: 'simt-bk16' }), { code: 'ERR_INVALID_ARGUMENT', field: 'convAlgo' },
    'a CUDA fp32 kernel variant on the CPU');
  await t.rejects(ResNetFeatures.load('resnet18', () => new Float32Array(1), { convAlgo: 'mma-pipelined' }), { code: 'ERR_INVALID_ARGUMENT', field: 'convAlgo' },
    'a CUDA tf32 kernel variant on the CPU');
  await t.rejects(ResNetFeatures.load('resnet18', () => new Float32Array(1), { convAlgo: 'wgmma' }), { code: 'ERR_INVALID_ARGUMENT', field: 'convAlgo' },
    'the bf16 wgmma kernel on the CPU');
  await t.rejects(ResNetFeatures.load('resnet18', () => new Float32Array(1), { activations: 'bfloat16' }), { code: 'ERR_INVALID_ARGUMENT', field: 'activations' },
    'bfloat16 activations on the CPU');
  await t.rejects(ResNetFeatures.load('resnet18', () => new Float32Array(1), { activations: 'float16' as 'float32' }), { code: 'ERR_INVALID_ARGUMENT', field: 'activations' },
    'an unknown activation type');
  if (cudaAvailable()) {
    await t.rejects(ResNetFeatures.load('resnet18', () => new Float32Array(1), { device: 'cuda', precision: 'tf32', activations: 'bfloat16' }),
      { code: 'ERR_INVALID_ARGUMENT', field: 'activations' }, 'bfloat16 activations need precision bf16');
  }
  if (cudaAvailable()) {
    await t.rejects(ResNetFeatures.load('resnet18', () => new Float32Array(1), { device: 'cuda', precision: 'tf32', convAlgo: 'simt-bk8' }),
      { code: 'ERR_INVALID_ARGUMENT', field: 'convAlgo' }, 'an fp32 variant with tf32');
    await t.rejects(ResNetFeatures.load('resnet18', () => new Float32Array(1), { device: 'cuda', convAlgo: 'mma-pipelined' }),
      { code: 'ERR_INVALID_ARGUMENT', field: 'convAlgo' }, 'a tf32 variant with fp32');
    await t.rejects(ResNetFeatures.load('resnet18', () => new Float32Array(1), { device: 'cuda', precision: 'bf16', convAlgo: 'wgmma' }),
      { code: 'ERR_INVALID_ARGUMENT', field: 'convAlgo' }, "'wgmma' needs bfloat16 activations");
    await t.rejects(ResNetFeatures.load('resnet18', () => new Float32Array(1), { device: 'cuda', precision: 'bf16', activations: 'bfloat16', convAlgo: 'simt-bk8' }),
      { code: 'ERR_INVALID_ARGUMENT', field: 'convAlgo' }, 'bfloat16 activations refuse an fp32 variant');
  }
  if (!cudaAvailable()) {
    await t.rejects(ResNetFeatures.load('resnet18', () => new Float32Array(1), { device: 'cuda' }), { code: 'ERR_DEVICE_UNAVAILABLE' });
  }
});

// The caching allocator at the edge of device memory, in a child process whose emulated device has
// 64 MiB (SSL_INV_CUDA_EMU_MEMORY is read once per process). Three freed 16 MiB blocks sit in the
// cache; a 40 MiB request fits only once they are given back (the allocator's release-and-retry);
// a second 40 MiB request cannot fit and must be ERR_OUT_OF_MEMORY naming the size and the
// process's holding; after it the device allocates (from the cache) and computes as before.
const emulated = info.devices[0]?.name === 'CUDA emulator (host)';
t.test('out of device memory: the cache is released and retried, then a typed error, and the device still works', {
  skip: !emulated ? 'needs the emulated device (its memory cap); bench/device/check.ts asks a GPU for 4 TiB'
    : !fs.existsSync(path.join(__dirname, '..', '..', 'lib', 'device.js')) ? 'lib/ not built (npm test builds it)' : false,
}, async (t) => {
  const script = `
    const { empty, tensor } = require('./lib/tensor');
    const { deviceMemoryStats } = require('./lib/device');
    const ops = require('./lib/ops');
    const D = 'cuda:0', MiB = 1 << 20, out = {};
    const stats = () => { const s = deviceMemoryStats(D); return { inUse: s.inUseBytes / MiB, cached: s.cachedBytes / MiB, mallocs: s.cudaMallocs, reuses: s.reuses }; };
    out.start = stats();
    for (const x of [0, 1, 2].map(() => empty('float32', [4 * MiB], D))) x.dispose();
    out.cached = stats();
    const big = empty('float32', [10 * MiB], D);
    out.afterRetry = stats();
    try { empty('float32', [10 * MiB], D).dispose(); out.oom = 'no error'; } catch (e) { out.oom = { code: e.code, message: e.message }; }
    out.afterOom = stats();
    big.dispose();
    const again = empty('float32', [10 * MiB], D);
    out.reused = stats();
    again.dispose();
    out.relu = Array.from(ops.relu(tensor(Float32Array.from([-1, 2, -3, 4]), [4]).to(D)).toFloat32Array());
    console.log(JSON.stringify(out));`;
  const root = path.join(__dirname, '..', '..');
  const r = spawnSync(process.execPath, ['-e', script], {
    cwd: root, encoding: 'utf8', env: { ...process.env, SSL_INV_CUDA_EMU_MEMORY: String(64 << 20) }, timeout: 120_000,
  });
  t.equal(r.status, 0, 'the child exits 0', { stderr: r.stderr });
  let out: { [part: string]: unknown; oom?: { code?: string; message?: string } } = {};
  try { out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}'); } catch { t.fail('the child prints its JSON line', { stdout: r.stdout }); }
  t.same(out.start, { inUse: 0, cached: 0, mallocs: 0, reuses: 0 }, 'a fresh process holds nothing');
  t.same(out.cached, { inUse: 0, cached: 48, mallocs: 3, reuses: 0 }, 'three freed 16 MiB blocks are cached');
  t.same(out.afterRetry, { inUse: 40, cached: 0, mallocs: 4, reuses: 0 }, '40 MiB fits after the cache is given back');
  t.equal(out.oom?.code, 'ERR_OUT_OF_MEMORY', 'the second 40 MiB is ERR_OUT_OF_MEMORY');
  t.match(out.oom?.message, /cuda:0: out of memory allocating 40\.000 MiB for .+ \(this process holds 40\.000 MiB; the device has 24\.000 MiB free of 64\.000 MiB\)\. Use a smaller --batch-size\./,
    'the message names the request, the holding and the device');
  t.same(out.afterOom, { inUse: 40, cached: 0, mallocs: 4, reuses: 0 }, 'the failed request leaves the books as they were');
  t.same(out.reused, { inUse: 40, cached: 0, mallocs: 4, reuses: 1 }, 'a freed block is handed out again');
  t.same(out.relu, [0, 2, 0, 4], 'and the device computes');
});

// A device fault (an illegal access, an ECC error) loses the CUDA context for good: injected on the
// emulated device (SSL_INV_CUDA_EMU_FAULT_AT=2: the second kernel launch faults), every later device
// call is ERR_DEVICE_FAULT saying that only a new process can use the device, the CPU still works,
// and the process exits normally.
t.test('a sticky device fault: ERR_DEVICE_FAULT from then on, the CPU unaffected, a clean exit', {
  skip: !emulated ? 'needs the emulated device (its fault injection)'
    : !fs.existsSync(path.join(__dirname, '..', '..', 'lib', 'device.js')) ? 'lib/ not built (npm test builds it)' : false,
}, async (t) => {
  const script = `
    const { tensor } = require('./lib/tensor');
    const ops = require('./lib/ops');
    const D = 'cuda:0', out = {};
    const attempt = (name, f) => { try { out[name] = f(); } catch (e) { out[name] = { code: e.code, message: e.message }; } };
    const x = tensor(Float32Array.from([-1, 2, -3, 4]), [4]).to(D);
    attempt('first', () => Array.from(ops.relu(x).toFloat32Array()));
    attempt('faulted', () => Array.from(ops.relu(x).toFloat32Array()));
    attempt('after', () => Array.from(ops.add(x, x).toFloat32Array()));
    attempt('read', () => Array.from(x.toFloat32Array()));
    attempt('upload', () => { tensor(new Float32Array(8), [8]).to(D); return 'no error'; });
    attempt('cpu', () => Array.from(ops.relu(tensor(Float32Array.from([-1, 5]), [2])).toFloat32Array()));
    console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['-e', script], {
    cwd: path.join(__dirname, '..', '..'), encoding: 'utf8', env: { ...process.env, SSL_INV_CUDA_EMU_FAULT_AT: '2' }, timeout: 120_000,
  });
  t.equal(r.status, 0, 'the process exits normally, device tensors still alive', { stderr: r.stderr });
  let out: { [part: string]: unknown } = {};
  try { out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}'); } catch { t.fail('the child prints its JSON line', { stdout: r.stdout }); }
  t.same(out.first, [0, 2, 0, 4], 'the first launch runs');
  const fault = /CUDA error 700 \(cudaErrorIllegalAddress\): an illegal memory access was encountered\. The device cannot be used by this process any more \(a sticky CUDA error\): start a new process/;
  for (const [part, op] of [['faulted', 'relu'], ['after', 'add'], ['read', 'copy to host'], ['upload', 'copy to device']] as const) {
    t.match(out[part], { code: 'ERR_DEVICE_FAULT', message: new RegExp(`^${op}: ${fault.source}`) }, `${part}: ${op} is ERR_DEVICE_FAULT`);
  }
  t.same(out.cpu, [0, 5], 'the CPU still computes');
});

t.test('results record the card and the CUDA versions of a device run (eval/results versions)', async (t) => {
  const { versions } = await import('../../src/eval/results');
  const cpu = versions('cpu');
  t.notOk('gpu' in cpu || 'cudaRuntime' in cpu, 'a CPU run: no CUDA entries');
  t.same(Object.keys(versions()), Object.keys(cpu), 'no device: as the CPU');
  if (!cudaAvailable()) return;
  const d = info.devices.find((x) => x.usable)!;
  const v = versions(`cuda:${d.index}`);
  t.equal(v.gpu, `${d.name} (compute capability ${d.computeCapability})`);
  t.equal(v.cudaRuntime, info.runtimeVersion);
  t.equal(v.cudaDriver, info.driverVersion);
});
