// `ssl-inv selftest` (src/selftest.ts, src/cli/selftest.ts): a CUDA device against the CPU backend.
//   - without a usable CUDA device (and with --device cpu): ERR_DEVICE_UNAVAILABLE saying why;
//   - on each CUDA device (the emulated one on machines without a GPU, see
//     test/cuda-emu/addon-emu.test.ts): every check agrees with the CPU, one line each, the summary,
//     the JSON report; and a device op made to disagree (matmul's result nudged by 1e-4) fails its
//     check, the others still run, and the command ends with ERR_SELFTEST_FAILED naming it.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cudaInfo } from '../../src/device';
import * as ops from '../../src/ops';
import { Tensor, tensor } from '../../src/tensor';
import { runCli } from '../helpers/cli';

const info = cudaInfo();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-selftest-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

t.test('--device cpu is refused: the self-test needs a CUDA device', async (t) => {
  const r = await runCli(['selftest', '--device', 'cpu']);
  t.equal(r.code, 1);
  t.match(r.stderr, /ERR_DEVICE_UNAVAILABLE: .*the self-test compares a CUDA device with the CPU/);
});

if (info.deviceCount === 0) {
  t.test('no usable CUDA device: ERR_DEVICE_UNAVAILABLE with the reason', async (t) => {
    const r = await runCli(['selftest']);
    t.equal(r.code, 1);
    t.match(r.stderr, /ERR_DEVICE_UNAVAILABLE: .*no CUDA device to test/);
  });
} else {
  const device = `cuda:${info.devices[0]!.index}`;
  t.test(`every check on ${device} agrees with the CPU`, async (t) => {
    const json = path.join(dir, 'report.json');
    const r = await runCli(['selftest', '--device', device, '--json', json]);
    t.equal(r.code, 0, 'exit status 0', { stderr: r.stderr });
    const lines = r.stdout.trim().split('\n');
    const report = JSON.parse(fs.readFileSync(json, 'utf8'));
    t.equal(report.device, device);
    t.equal(report.failed, 0, 'no check failed');
    t.ok(report.checks.length >= 40, `${report.checks.length} checks`);
    t.equal(lines.length, report.checks.length + 1, 'one line per check and the summary');
    t.ok(lines.slice(0, -1).every((l) => l.startsWith('ok  ')), 'every line says ok');
    t.match(lines[lines.length - 1], new RegExp(`^${device} \\(.*\\): ${report.checks.length} of ${report.checks.length} checks agree with the CPU$`));
    const names: string[] = report.checks.map((c: { name: string }) => c.name);
    for (const want of [/stem.*fp32$/, /TF32$/, /bf16$/, /backward data/, /backward weight/, /batch norm backward/, /SGD step/, /covariance/,
      /MoCo loss/, /enqueue.*same bits/, /gathered.*same bits/, /uint8 images normalised.*same bits/, /ResNet-18 features/, /training step.*every gradient/, /training step.*the same bits/]) {
      t.ok(names.some((n) => want.test(n)), `a check matching ${want}`);
    }
  });

  t.test('a device op that disagrees fails its check, and the command', async (t) => {
    const real = ops.matmul;
    // Nudge the device's matmul results by 1e-4 of their scale: the CPU's stay as they are.
    (ops as { matmul: typeof ops.matmul }).matmul = (a: Tensor, b: Tensor, o?: ops.GemmOptions) => {
      const r = real(a, b, o);
      if (r.device === 'cpu') return r;
      const v = r.toFloat32Array().map((x) => x * (1 + 1e-4));
      const dev = r.device;
      r.dispose();
      const h = tensor(v, [...r.shape]);
      try { return h.to(dev); } finally { h.dispose(); }
    };
    t.teardown(() => { (ops as { matmul: typeof ops.matmul }).matmul = real; });
    const json = path.join(dir, 'failed.json');
    const r = await runCli(['selftest', '--device', device, '--json', json]);
    const report = JSON.parse(fs.readFileSync(json, 'utf8'));
    const bad = report.checks.filter((c: { ok: boolean }) => !c.ok).map((c: { name: string }) => c.name);
    t.same(bad, ['matmul 64x96 . 96x48'], 'only the matmul check fails');
    t.equal(report.checks.length, report.passed + 1, 'and every other check still ran');
    t.equal(r.code, 1, 'the command fails');
    t.match(r.stderr, /ERR_SELFTEST_FAILED: device: 1 check\(s\) on cuda:\d+ disagree with the CPU: matmul 64x96 \. 96x48/);
    t.match(r.stdout, /^FAIL .*matmul 64x96/m);
  });
}
