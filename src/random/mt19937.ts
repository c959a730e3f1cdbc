/**
 * numpy's legacy random generator (np.random.RandomState / np.random.seed), reproduced draw for draw:
 * the MT19937 Mersenne Twister seeded as numpy seeds it from an integer, and the legacy samplers the
 * original system relies on:
 *   - `np.random.seed(0); np.random.choice(np.arange(n), k)`: which images the synthetic-invariance
 *     evaluation samples (with replacement) -> `choice(n, k)`;
 *   - `RandomState(seed).shuffle(indices)`: scikit-learn's KFold(shuffle=True) -> `shuffle`;
 *   - `RandomState.rand(...)` / `random_sample`: uniform doubles in [0, 1) (53-bit) -> `randomSample`;
 *   - `standard_normal` / `uniform`: the random model's initialisation (nn/torchvision-init.ts).
 * Bounded integers use numpy's legacy masked rejection sampling (draw 32 bits, mask to the next power
 * of two, redraw while above the bound); `random_interval` (shuffle) the same on the inclusive bound.
 */

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER = 0x80000000;
const LOWER = 0x7fffffff;

export class RandomState {
  private readonly mt = new Uint32Array(N);
  private mti = N + 1;
  private gauss: number | undefined;

  /** np.random.RandomState(seed) / np.random.seed(seed) for an integer 0 <= seed < 2^32. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`seed must be an integer between 0 and 2**32 - 1, got ${seed}`);
    }
    this.seed(seed);
  }

  /** MT19937's init_genrand, which numpy's legacy seeding uses for an integer seed. */
  seed(seed: number): void {
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      // 1812433253 * prev + i, modulo 2^32, without losing bits in float arithmetic
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.mti = N;
    this.gauss = undefined;
  }

  private generate(): void {
    const mt = this.mt;
    let kk = 0;
    let y: number;
    for (; kk < N - M; kk++) {
      y = (mt[kk]! & UPPER) | (mt[kk + 1]! & LOWER);
      mt[kk] = mt[kk + M]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    for (; kk < N - 1; kk++) {
      y = (mt[kk]! & UPPER) | (mt[kk + 1]! & LOWER);
      mt[kk] = mt[kk + (M - N)]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    y = (mt[N - 1]! & UPPER) | (mt[0]! & LOWER);
    mt[N - 1] = mt[M - 1]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    this.mti = 0;
  }

  /** The next 32-bit output (genrand_int32). */
  nextUint32(): number {
    if (this.mti >= N) this.generate();
    let y = this.mt[this.mti++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A double in [0, 1) with 53 random bits (genrand_res53), as random_sample / rand. */
  randomSample(): number {
    const a = this.nextUint32() >>> 5, b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /**
   * `standard_normal()`: numpy's legacy polar Box-Muller, which makes two normals per accepted pair
   * and returns the second first. (Math.log may differ from C's log in the last bit on rare inputs.)
   */
  standardNormal(): number {
    if (this.gauss !== undefined) {
      const g = this.gauss;
      this.gauss = undefined;
      return g;
    }
    let x1: number, x2: number, r2: number;
    do {
      x1 = 2 * this.randomSample() - 1;
      x2 = 2 * this.randomSample() - 1;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1 || r2 === 0);
    const f = Math.sqrt((-2 * Math.log(r2)) / r2);
    this.gauss = f * x1;
    return f * x2;
  }

  /** `uniform(low, high)`: low + (high - low) * random_sample(). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.randomSample();
  }

  /** `rand(n)`: n doubles in [0, 1). */
  rand(n: number): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.randomSample();
    return out;
  }

  /** An integer in [0, max] by numpy's masked rejection (random_interval / bounded masked uint32). */
  private interval(max: number): number {
    if (max === 0) return 0;
    if (max > 0xffffffff) throw new RangeError('bounds above 2**32 are not needed here and not implemented');
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    let v: number;
    do {
      v = (this.nextUint32() & mask) >>> 0;
    } while (v > max);
    return v;
  }

  /** `randint(low, high, size)` (legacy int64 path), high exclusive. */
  randint(low: number, high: number, size: number): number[] {
    if (!(high > low)) throw new RangeError(`randint: low >= high (${low}, ${high})`);
    const out: number[] = [];
    for (let i = 0; i < size; i++) out.push(low + this.interval(high - 1 - low));
    return out;
  }

  /** `choice(n, size)` with replacement and uniform probabilities (np.random.choice(np.arange(n), size)). */
  choice(n: number, size: number): number[] {
    if (!(n > 0)) throw new RangeError('choice: the population must be non-empty');
    return this.randint(0, n, size);
  }

  /** In-place `shuffle` of an array (Fisher-Yates from the end, as numpy's legacy shuffle). */
  shuffle<T>(a: T[] | Int32Array | Float64Array): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.interval(i);
      const tmp = a[i]!;
      a[i] = a[j]!;
      a[j] = tmp as never;
    }
  }

  /** `permutation(n)`: a shuffled arange(n). */
  permutation(n: number): number[] {
    const a = Array.from({ length: n }, (_, i) => i);
    this.shuffle(a);
    return a;
  }
}
