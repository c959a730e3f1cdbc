/**
 * The few calls of tap's Test API that test/ops/op-table.ts uses, so the device check runs the very
 * same op table as `npm test` on a machine that has Node but not our dev dependencies (the GPU
 * machine). Subtests run in order; every assertion is recorded with its subtest path and printed as
 * "ok" / "not ok" lines. Not a test framework: no plans, no timeouts, no async interleaving.
 */
import { isDeepStrictEqual } from 'node:util';

export interface Assertion {
  ok: boolean;
  name: string;
}

type Body = (t: MiniTest) => void | Promise<void>;

export class MiniTest {
  readonly results: Assertion[] = [];
  private readonly hooks: (() => void)[] = [];
  private readonly queue: { name: string; skip: string | false; fn: Body }[] = [];

  constructor(readonly path: string, private readonly print: (line: string) => void = (l) => process.stdout.write(`${l}\n`)) {}

  private record(ok: boolean, name: string): boolean {
    const full = `${this.path} > ${name}`;
    this.results.push({ ok, name: full });
    this.print(`${ok ? 'ok' : 'not ok'} - ${full}`);
    return ok;
  }

  ok(v: unknown, name = 'should be truthy'): boolean { return this.record(!!v, name); }
  pass(name = 'pass'): boolean { return this.record(true, name); }
  fail(name = 'fail'): boolean { return this.record(false, name); }
  equal(a: unknown, b: unknown, name = 'should be equal'): boolean { return this.record(a === b, `${name}${a === b ? '' : ` (${String(a)} !== ${String(b)})`}`); }
  same(a: unknown, b: unknown, name = 'should be equivalent'): boolean { return this.record(isDeepStrictEqual(a, b), name); }
  match(s: unknown, re: RegExp, name = 'should match pattern'): boolean { return this.record(re.test(String(s)), `${name}${re.test(String(s)) ? '' : ` (${String(s)} !~ ${re})`}`); }
  comment(m: string): void { this.print(`# ${m}`); }

  throws(fn: () => unknown, expected?: unknown, name = 'expected to throw'): boolean {
    const want = typeof expected === 'string' ? undefined : expected as { code?: string } | RegExp | undefined;
    const label = typeof expected === 'string' ? expected : name;
    try {
      fn();
    } catch (e) {
      if (want instanceof RegExp) return this.record(want.test(String((e as Error).message)), label);
      if (want && typeof want === 'object' && 'code' in want) {
        const code = (e as { code?: string }).code;
        return this.record(code === want.code, `${label}${code === want.code ? '' : ` (got ${code})`}`);
      }
      return this.record(true, label);
    }
    return this.record(false, `${label} (did not throw)`);
  }

  test(name: string, a: Body | { skip?: string | boolean }, b?: Body): void {
    const opts = typeof a === 'function' ? {} : a;
    const fn = (typeof a === 'function' ? a : b)!;
    this.queue.push({ name, skip: opts.skip ? String(opts.skip) : false, fn });
  }

  /** tap's t.before: run before the first subtest. */
  before(fn: () => void): void { this.hooks.push(fn); }

  async run(): Promise<Assertion[]> {
    for (const f of this.hooks) f();
    for (const q of this.queue) {
      if (q.skip) {
        this.print(`# skip ${this.path} > ${q.name}: ${q.skip}`);
        continue;
      }
      const sub = new MiniTest(`${this.path} > ${q.name}`, this.print);
      try {
        await q.fn(sub);
        await sub.run();
      } catch (e) {
        sub.record(false, `threw: ${(e as Error).stack ?? String(e)}`);
      }
      this.results.push(...sub.results);
    }
    return this.results;
  }
}
