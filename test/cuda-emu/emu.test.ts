/**
 * The CUDA kernels' logic, run through the host emulator (native/cuda/emu/cuda_emu.h) on machines
 * without a GPU. Each test/cuda-emu/<family>_emu_test.cc is compiled together with
 * native/cuda/<family>.cu by the host C++ compiler and run; every "ok - ..." / "not ok - ..." line it
 * prints becomes one assertion. A program that needs more sources (e.g. the CPU ops it is compared
 * with, bit for bit) names them, relative to the repository root, on a line of its own:
 *   // emu-sources: native/cpu/color.cc native/core/threadpool.cc
 * A program that tests header-only device code (no native/cuda/<family>.cu) says so:
 *   // emu-kernel-source: none
 * A program that also builds with nvcc, to run on a GPU (bench/device/build-gpu-tests.sh), gives
 * nvcc's target flags; where nvcc is present this test compiles it that way too, so the GPU build
 * cannot rot unnoticed (it does not run it: there is no GPU here):
 *   // gpu-build: -gencode arch=compute_90a,code=sm_90a
 * A program that must also pass on other emulated cards is run once more per line like
 *   // emu-env: SSL_INV_CUDA_EMU_CC=8.6
 * with those variables set (native/cuda/emu/runtime_emu.h); its checks are then named with them.
 * This checks indexing, tiling, predicates, reductions and synchronisation structure against float64
 * (or CPU-op) references; it does not replace running the kernels on a GPU (bench/device/run.sh),
 * which is what verifies them.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const here = path.join(root, 'test', 'cuda-emu');
const cxx = process.env.CXX ?? 'g++';
const programs = fs.readdirSync(here).filter((f) => f.endsWith('_emu_test.cc')).sort();

const hasCompiler = spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status === 0;
const nvcc = process.env.NVCC ?? 'nvcc';
const hasNvcc = spawnSync(nvcc, ['--version'], { stdio: 'ignore' }).status === 0;
const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inv-cuda-emu-'));
t.teardown(() => fs.rmSync(outDir, { recursive: true, force: true }));

t.ok(programs.length > 0, 'there are emulation test programs');

for (const program of programs) {
  const family = program.replace(/_emu_test\.cc$/, '');
  t.test(`${family} kernels (emulated)`, { skip: hasCompiler ? false : `no host C++ compiler (${cxx})` }, async (t) => {
    const exe = path.join(outDir, family);
    const text = fs.readFileSync(path.join(here, program), 'utf8');
    const kernelSources: string[] = [];
    if (!/^\/\/ emu-kernel-source: none$/m.test(text)) {
      const kernelSource = path.join(root, 'native', 'cuda', `${family}.cu`);
      t.ok(fs.existsSync(kernelSource), `native/cuda/${family}.cu exists`);
      kernelSources.push(kernelSource);
    }
    const extra = [...text.matchAll(/^\/\/ emu-sources: (.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/)).map((f) => path.join(root, f));
    const gpuFlags = /^\/\/ gpu-build: (.+)$/m.exec(text)?.[1]!.trim().split(/\s+/);
    if (gpuFlags) {
      t.test('builds with nvcc for the GPU', { skip: hasNvcc ? false : `no nvcc (${nvcc})` }, async (t) => {
        const gpu = spawnSync(nvcc, ['-x', 'cu', '-std=c++17', '-O2', ...gpuFlags, '-I', path.join(root, 'native'), path.join(here, program),
          ...kernelSources, '-o', `${exe}-gpu`], { encoding: 'utf8' });
        t.equal(gpu.status, 0, `nvcc ${gpuFlags.join(' ')}${gpu.status === 0 ? '' : `:\n${gpu.stderr.slice(-3000)}`}`);
      });
    }
    const build = spawnSync(cxx, ['-std=c++20', '-O2', '-pthread', '-Wall', '-Wno-unknown-pragmas', '-I', path.join(root, 'native'),
      '-x', 'c++', path.join(here, program), ...kernelSources, ...extra, '-o', exe], { encoding: 'utf8' });
    t.equal(build.status, 0, `compiles with ${cxx}${build.status === 0 ? '' : `:\n${build.stderr}`}`);
    if (build.status !== 0) return;
    // The default emulated card, then each emu-env line's.
    const envs = [[], ...[...text.matchAll(/^\/\/ emu-env: (.+)$/gm)].map((m) => m[1]!.trim().split(/\s+/))];
    for (const vars of envs) {
      const env = { ...process.env, ...Object.fromEntries(vars.map((v) => v.split('=') as [string, string])) };
      const tag = vars.length ? `[${vars.join(' ')}] ` : '';
      const run = spawnSync(exe, [], { encoding: 'utf8', timeout: 300_000, env });
      const lines = run.stdout.split('\n');
      let checks = 0;
      for (const line of lines) {
        if (line.startsWith('ok - ')) {
          t.pass(tag + line.slice(5));
          checks++;
        } else if (line.startsWith('not ok - ')) {
          t.fail(tag + line.slice(9));
          checks++;
        }
      }
      t.ok(checks > 0, `${tag}the program made checks`);
      t.equal(run.status, 0, `${tag}exits 0${run.status === 0 ? '' : ` (status ${run.status}, signal ${run.signal}): ${run.stderr.slice(-2000)}`}`);
    }
  });
}
