/**
 * L-BFGS-B for unconstrained problems, following the path of scipy 1.10's `minimize(method='L-BFGS-B')`:
 * the Fortran L-BFGS-B 3.0 (Zhu, Byrd, Lu, Nocedal; Morales and Nocedal's 2011 remark) as scipy ships
 * it in `optimize/lbfgsb_src/lbfgsb.f`, driven by the loop of `optimize/_lbfgsb_py.py`.
 *
 * Why follow it this closely: scikit-learn's LogisticRegression(solver='lbfgs') stops at max_iter = 100
 * iterations, often before convergence, so its answer is wherever scipy's L-BFGS-B happens to be after
 * 100 iterations. To give the same answers we take the same steps: the same compact representation of
 * the limited-memory BFGS matrix (Byrd, Nocedal and Schnabel) with its LEL^T factorisation (formk) and
 * the same direct subspace solve (subsm), the same generalized Cauchy point on the first iteration and
 * after each restart, the same Moré–Thuente line search (dcsrch/dcstep with ftol = 1e-3, gtol = 0.9,
 * xtol = 0.1, stpmin = 0, stpmax = 1e10, the first step min(1/||d||, stpmax)), the same restarts, update
 * skips and stopping tests, in the same floating-point order wherever the Fortran fixes one (the BLAS
 * calls are written as the reference BLAS evaluates them: sequential dot products).
 *
 * Only unconstrained problems are needed (every variable has nbd = 0), and only the branches the
 * Fortran takes for nbd = 0 are kept: the projection of x is the identity, every variable is free
 * (Z = I), the Cauchy point is computed only while the memory is empty (col = 0, where it is x - g),
 * and once col > 0 the Cauchy search is skipped and the subspace minimisation gives the quasi-Newton
 * step. The comments name the Fortran routine each piece comes from; the code is our own.
 *
 * The solver runs by reverse communication, like setulb: `LbfgsbSolver` is a state machine that asks
 * for f and g at `x` and reports each new iterate. That lets many independent problems run in lockstep
 * with one batched function evaluation per round (`runLbfgsbBatch`), which is how the probes batch
 * folds and regularisation values, on the CPU and later on the GPU.
 */
import { SslInvError } from '../errors';
import { D, ddot, G, HostLbfgsbVectors, LbfgsbVectors, R, T, WS, WY, X, Z } from './lbfgsb-vectors';

/** Options, with scipy's defaults (`scipy.optimize.minimize(method='L-BFGS-B')`). */
export interface LbfgsbOptions {
  /** History size (maxcor). Default 10. */
  m?: number;
  /** Stop when (f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol. Default 2.220446049250313e-09. */
  ftol?: number;
  /** Stop when max |g_i| <= gtol. Default 1e-5. */
  gtol?: number;
  /** Most iterations. Default 15000. */
  maxiter?: number;
  /** Most function evaluations (checked after each iteration, as scipy does). Default 15000. */
  maxfun?: number;
  /** Most function evaluations in one line search. Default 20. */
  maxls?: number;
  /** Called with each new iterate (scipy's `callback`), before the stopping tests. */
  callback?: (x: Float64Array, f: number) => void;
}

export type LbfgsbStatus =
  | 'converged-pgtol' // CONVERGENCE: NORM_OF_PROJECTED_GRADIENT_<=_PGTOL
  | 'converged-factr' // CONVERGENCE: REL_REDUCTION_OF_F_<=_FACTR*EPSMCH
  | 'max-iterations' // STOP: TOTAL NO. of ITERATIONS REACHED LIMIT
  | 'max-evaluations' // STOP: TOTAL NO. of f AND g EVALUATIONS EXCEEDS LIMIT
  | 'abnormal-line-search'; // ABNORMAL_TERMINATION_IN_LNSRCH

/** scipy's message for each status (`OptimizeResult.message`). */
export const LBFGSB_MESSAGES: Record<LbfgsbStatus, string> = {
  'converged-pgtol': 'CONVERGENCE: NORM_OF_PROJECTED_GRADIENT_<=_PGTOL',
  'converged-factr': 'CONVERGENCE: REL_REDUCTION_OF_F_<=_FACTR*EPSMCH',
  'max-iterations': 'STOP: TOTAL NO. of ITERATIONS REACHED LIMIT',
  'max-evaluations': 'STOP: TOTAL NO. of f AND g EVALUATIONS EXCEEDS LIMIT',
  'abnormal-line-search': 'ABNORMAL_TERMINATION_IN_LNSRCH',
};

export interface LbfgsbResult {
  x: Float64Array;
  f: number;
  g: Float64Array;
  /** Iterations (scipy's `nit`). */
  nit: number;
  /** Function evaluations, counted as scipy's ScalarFunction counts them (`nfev`). */
  nfev: number;
  status: LbfgsbStatus;
  /** scipy's warnflag: 0 converged, 1 iteration/evaluation limit, 2 line-search failure. */
  warnflag: 0 | 1 | 2;
  message: string;
}

/** What the solver needs next. */
export type LbfgsbRequest =
  | { kind: 'fg' } // evaluate f and g at solver.x, then call tell(f, g)
  | { kind: 'done' };

const EPSMCH = 2.220446049250313e-16; // 2 * dlamch('e') = epsilon(1d0)
const BIG = 1e10; // lnsrlb's stpmax for unconstrained problems
const LS_FTOL = 1e-3;
const LS_GTOL = 0.9;
const LS_XTOL = 0.1;

// --- LINPACK dpofa / dtrsl on column-major storage (a(i,j) = a[off + i + j*lda], 0-based) -----------

/** Cholesky of the upper triangle (A = R^T R, R upper, stored over A). Returns 0 or the failing column (1-based). */
function dpofa(a: Float64Array, off: number, lda: number, n: number): number {
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let k = 0; k < j; k++) {
      let t = a[off + k + j * lda]! - ddot(k, a, off + k * lda, a, off + j * lda);
      t = t / a[off + k + k * lda]!;
      a[off + k + j * lda] = t;
      s = s + t * t;
    }
    s = a[off + j + j * lda]! - s;
    if (s <= 0) return j + 1;
    a[off + j + j * lda] = Math.sqrt(s);
  }
  return 0;
}

/**
 * dtrsl for an upper-triangular T: job 01 solves T x = b, job 11 solves T^T x = b (b overwritten,
 * b(i) = b[bo + i]). Returns 0, or the 1-based index of a zero diagonal element.
 */
function dtrslUpper(t: Float64Array, ldt: number, n: number, b: Float64Array, bo: number, transpose: boolean): number {
  for (let i = 0; i < n; i++) if (t[i + i * ldt] === 0) return i + 1;
  if (!transpose) {
    // case 2: back substitution by columns (daxpy)
    b[bo + n - 1] = b[bo + n - 1]! / t[n - 1 + (n - 1) * ldt]!;
    for (let jj = 2; jj <= n; jj++) {
      const j = n - jj; // 0-based column j; Fortran's j = n - jj + 1
      const temp = -b[bo + j + 1]!;
      if (temp !== 0) {
        const col = (j + 1) * ldt;
        for (let i = 0; i <= j; i++) b[bo + i] = b[bo + i]! + temp * t[col + i]!;
      }
      b[bo + j] = b[bo + j]! / t[j + j * ldt]!;
    }
  } else {
    // case 4: forward substitution with the columns of T as rows of T^T (ddot)
    b[bo] = b[bo]! / t[0]!;
    for (let j = 1; j < n; j++) {
      b[bo + j] = b[bo + j]! - ddot(j, t, j * ldt, b, bo);
      b[bo + j] = b[bo + j]! / t[j + j * ldt]!;
    }
  }
  return 0;
}

// --- the Moré–Thuente line search (MINPACK-2 dcsrch / dcstep) ------------------------------------

type CsrchTask = 'START' | 'FG' | 'CONVERGENCE' | 'WARNING' | 'ERROR';

class Dcsrch {
  task: CsrchTask = 'START';
  message = '';
  private brackt = false;
  private stage = 1;
  private ginit = 0;
  private gtest = 0;
  private gx = 0;
  private gy = 0;
  private finit = 0;
  private fx = 0;
  private fy = 0;
  private stx = 0;
  private sty = 0;
  private stmin = 0;
  private stmax = 0;
  private width = 0;
  private width1 = 0;

  /** One call of dcsrch: returns the new trial step. */
  step(f: number, g: number, stp: number, ftol: number, gtol: number, xtol: number, stpmin: number, stpmax: number): number {
    if (this.task === 'START') {
      let err = '';
      if (stp < stpmin) err = 'ERROR: STP .LT. STPMIN';
      if (stp > stpmax) err = 'ERROR: STP .GT. STPMAX';
      if (g >= 0) err = 'ERROR: INITIAL G .GE. ZERO';
      if (ftol < 0) err = 'ERROR: FTOL .LT. ZERO';
      if (gtol < 0) err = 'ERROR: GTOL .LT. ZERO';
      if (xtol < 0) err = 'ERROR: XTOL .LT. ZERO';
      if (stpmin < 0) err = 'ERROR: STPMIN .LT. ZERO';
      if (stpmax < stpmin) err = 'ERROR: STPMAX .LT. STPMIN';
      if (err) {
        this.task = 'ERROR';
        this.message = err;
        return stp;
      }
      this.brackt = false;
      this.stage = 1;
      this.finit = f;
      this.ginit = g;
      this.gtest = ftol * this.ginit;
      this.width = stpmax - stpmin;
      this.width1 = this.width / 0.5;
      this.stx = 0;
      this.fx = this.finit;
      this.gx = this.ginit;
      this.sty = 0;
      this.fy = this.finit;
      this.gy = this.ginit;
      this.stmin = 0;
      this.stmax = stp + 4.0 * stp;
      this.task = 'FG';
      return stp;
    }

    const ftest = this.finit + stp * this.gtest;
    if (this.stage === 1 && f <= ftest && g >= 0) this.stage = 2;

    let warn = '';
    if (this.brackt && (stp <= this.stmin || stp >= this.stmax)) warn = 'WARNING: ROUNDING ERRORS PREVENT PROGRESS';
    if (this.brackt && this.stmax - this.stmin <= xtol * this.stmax) warn = 'WARNING: XTOL TEST SATISFIED';
    if (stp === stpmax && f <= ftest && g <= this.gtest) warn = 'WARNING: STP = STPMAX';
    if (stp === stpmin && (f > ftest || g >= this.gtest)) warn = 'WARNING: STP = STPMIN';
    if (warn) {
      this.task = 'WARNING';
      this.message = warn;
    }
    if (f <= ftest && Math.abs(g) <= gtol * -this.ginit) {
      this.task = 'CONVERGENCE';
      this.message = 'CONVERGENCE';
    }
    if (this.task === 'WARNING' || this.task === 'CONVERGENCE') return stp;

    let s: StepState;
    if (this.stage === 1 && f <= this.fx && f > ftest) {
      // the modified function psi(stp) = f(stp) - f(0) - stp * gtest
      const fm = f - stp * this.gtest;
      const fxm = this.fx - this.stx * this.gtest;
      const fym = this.fy - this.sty * this.gtest;
      const gm = g - this.gtest;
      const gxm = this.gx - this.gtest;
      const gym = this.gy - this.gtest;
      s = dcstep({ stx: this.stx, fx: fxm, dx: gxm, sty: this.sty, fy: fym, dy: gym, stp, brackt: this.brackt }, fm, gm,
        this.stmin, this.stmax);
      this.fx = s.fx + s.stx * this.gtest;
      this.fy = s.fy + s.sty * this.gtest;
      this.gx = s.dx + this.gtest;
      this.gy = s.dy + this.gtest;
    } else {
      s = dcstep({ stx: this.stx, fx: this.fx, dx: this.gx, sty: this.sty, fy: this.fy, dy: this.gy, stp, brackt: this.brackt },
        f, g, this.stmin, this.stmax);
      this.fx = s.fx;
      this.fy = s.fy;
      this.gx = s.dx;
      this.gy = s.dy;
    }
    this.stx = s.stx;
    this.sty = s.sty;
    this.brackt = s.brackt;
    stp = s.stp;

    if (this.brackt) {
      if (Math.abs(this.sty - this.stx) >= 0.66 * this.width1) stp = this.stx + 0.5 * (this.sty - this.stx);
      this.width1 = this.width;
      this.width = Math.abs(this.sty - this.stx);
    }
    if (this.brackt) {
      this.stmin = Math.min(this.stx, this.sty);
      this.stmax = Math.max(this.stx, this.sty);
    } else {
      this.stmin = stp + 1.1 * (stp - this.stx);
      this.stmax = stp + 4.0 * (stp - this.stx);
    }
    stp = Math.max(stp, stpmin);
    stp = Math.min(stp, stpmax);
    if ((this.brackt && (stp <= this.stmin || stp >= this.stmax)) || (this.brackt && this.stmax - this.stmin <= xtol * this.stmax)) {
      stp = this.stx;
    }
    this.task = 'FG';
    return stp;
  }
}

interface StepState {
  stx: number; fx: number; dx: number;
  sty: number; fy: number; dy: number;
  stp: number; brackt: boolean;
}

/** Fortran max/min on doubles as gfortran evaluates them for finite values. */
function max3(a: number, b: number, c: number): number {
  return Math.max(Math.max(a, b), c);
}

/** dcstep: a safeguarded step from the interval [stx, sty] and the trial stp with value fp, slope dp. */
function dcstep(st: StepState, fp: number, dp: number, stpmin: number, stpmax: number): StepState {
  let { stx, fx, dx, sty, fy, dy, stp, brackt } = st;
  const sgnd = dp * (dx / Math.abs(dx));
  let stpf: number;

  if (fp > fx) {
    // case 1: a higher function value; the minimum is bracketed
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp;
    const s = max3(Math.abs(theta), Math.abs(dx), Math.abs(dp));
    let gamma = s * Math.sqrt((theta / s) ** 2 - (dx / s) * (dp / s));
    if (stp < stx) gamma = -gamma;
    const p = gamma - dx + theta;
    const q = gamma - dx + gamma + dp;
    const r = p / q;
    const stpc = stx + r * (stp - stx);
    const stpq = stx + (dx / ((fx - fp) / (stp - stx) + dx) / 2) * (stp - stx);
    if (Math.abs(stpc - stx) < Math.abs(stpq - stx)) stpf = stpc;
    else stpf = stpc + (stpq - stpc) / 2;
    brackt = true;
  } else if (sgnd < 0) {
    // case 2: lower value, derivatives of opposite sign; bracketed
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp;
    const s = max3(Math.abs(theta), Math.abs(dx), Math.abs(dp));
    let gamma = s * Math.sqrt((theta / s) ** 2 - (dx / s) * (dp / s));
    if (stp > stx) gamma = -gamma;
    const p = gamma - dp + theta;
    const q = gamma - dp + gamma + dx;
    const r = p / q;
    const stpc = stp + r * (stx - stp);
    const stpq = stp + (dp / (dp - dx)) * (stx - stp);
    if (Math.abs(stpc - stp) > Math.abs(stpq - stp)) stpf = stpc;
    else stpf = stpq;
    brackt = true;
  } else if (Math.abs(dp) < Math.abs(dx)) {
    // case 3: lower value, same sign, the derivative's magnitude decreases
    const theta = (3 * (fx - fp)) / (stp - stx) + dx + dp;
    const s = max3(Math.abs(theta), Math.abs(dx), Math.abs(dp));
    let gamma = s * Math.sqrt(Math.max(0, (theta / s) ** 2 - (dx / s) * (dp / s)));
    if (stp > stx) gamma = -gamma;
    const p = gamma - dp + theta;
    const q = gamma + (dx - dp) + gamma;
    const r = p / q;
    let stpc: number;
    if (r < 0 && gamma !== 0) stpc = stp + r * (stx - stp);
    else if (stp > stx) stpc = stpmax;
    else stpc = stpmin;
    const stpq = stp + (dp / (dp - dx)) * (stx - stp);
    if (brackt) {
      if (Math.abs(stpc - stp) < Math.abs(stpq - stp)) stpf = stpc;
      else stpf = stpq;
      if (stp > stx) stpf = Math.min(stp + 0.66 * (sty - stp), stpf);
      else stpf = Math.max(stp + 0.66 * (sty - stp), stpf);
    } else {
      if (Math.abs(stpc - stp) > Math.abs(stpq - stp)) stpf = stpc;
      else stpf = stpq;
      stpf = Math.min(stpmax, stpf);
      stpf = Math.max(stpmin, stpf);
    }
  } else {
    // case 4: lower value, same sign, the derivative does not decrease
    if (brackt) {
      const theta = (3 * (fp - fy)) / (sty - stp) + dy + dp;
      const s = max3(Math.abs(theta), Math.abs(dy), Math.abs(dp));
      let gamma = s * Math.sqrt((theta / s) ** 2 - (dy / s) * (dp / s));
      if (stp > sty) gamma = -gamma;
      const p = gamma - dp + theta;
      const q = gamma - dp + gamma + dy;
      const r = p / q;
      const stpc = stp + r * (sty - stp);
      stpf = stpc;
    } else if (stp > stx) {
      stpf = stpmax;
    } else {
      stpf = stpmin;
    }
  }

  // update the interval of uncertainty
  if (fp > fx) {
    sty = stp;
    fy = fp;
    dy = dp;
  } else {
    if (sgnd < 0) {
      sty = stx;
      fy = fx;
      dy = dx;
    }
    stx = stp;
    fx = fp;
    dx = dp;
  }
  stp = stpf;
  return { stx, fx, dx, sty, fy, dy, stp, brackt };
}

// --- the solver -------------------------------------------------------------------------------

type Phase =
  | 'start' // nothing evaluated yet
  | 'fg-start' // waiting for f, g at x0
  | 'fg-ln' // waiting for f, g at a line-search trial point
  | 'done';

/**
 * mainlb as a state machine. Create it with x0, call `next()` to learn what it needs, provide f and g
 * with `tell(f, g)` when asked for them (evaluated at `x`), and read the result when it says 'done'.
 * The driver's iteration and evaluation limits (scipy's Python loop) are applied here too.
 */
export class LbfgsbSolver {
  readonly n: number;
  f = 0;
  /** The solver's n-vectors (x, g, the memory, work vectors): on the host, or on a device. */
  readonly vectors: LbfgsbVectors;
  status: LbfgsbStatus | undefined;
  /** Iterations completed (scipy's n_iterations). */
  nit = 0;
  /** Evaluations as scipy's ScalarFunction counts them (x0 included). */
  nfev = 0;
  /** Counters of the Fortran, for diagnostics: updates skipped, restarts after a failure. */
  nskip = 0;
  nrestart = 0;

  private readonly m: number;
  private readonly factr: number;
  private readonly pgtol: number;
  private readonly maxiter: number;
  private readonly maxfun: number;
  private readonly maxls: number;
  private readonly callback: ((x: Float64Array, f: number) => void) | undefined;

  // L-BFGS memory (column-major, 0-based): s_j/y_j in the vectors' WS/WY slots, sy/ss/wt m x m,
  // wn/snd 2m x 2m
  private readonly sy: Float64Array;
  private readonly ss: Float64Array;
  private readonly wt: Float64Array;
  private readonly wn: Float64Array;
  private readonly snd: Float64Array;
  private readonly wv: Float64Array;
  /** Scratch for ddotMany's results (2m). */
  private readonly dots: Float64Array;

  private phase: Phase = 'start';
  private col = 0;
  private head = 0;
  private theta = 1;
  private iupdat = 0;
  private updatd = false;
  private itail = 0;
  private iter = 0;
  private fold = 0;
  private sbgnrm = 0;
  private stp = 0;
  private gd = 0;
  private gdold = 0;
  private dtd = 0;
  private dnorm = 0;
  private ifun = 0;
  private iback = 0;
  private readonly tol: number;
  private csrch = new Dcsrch();

  /**
   * x0: the start. `makeVectors` places the vectors (default: host arrays); it is called with n and m
   * and must return vectors whose x the solver then sets to x0.
   */
  constructor(x0: ArrayLike<number>, opts: LbfgsbOptions = {}, makeVectors?: (n: number, m: number) => LbfgsbVectors) {
    const n = x0.length;
    const m = opts.m ?? 10;
    const ftol = opts.ftol ?? 2.220446049250313e-9;
    this.pgtol = opts.gtol ?? 1e-5;
    this.maxiter = opts.maxiter ?? 15000;
    this.maxfun = opts.maxfun ?? 15000;
    this.maxls = opts.maxls ?? 20;
    this.callback = opts.callback;
    // scipy: factr = ftol / np.finfo(float).eps; mainlb: tol = factr * epsmch
    this.factr = ftol / EPSMCH;
    if (!(n > 0)) throw new SslInvError('ERR_INVALID_ARGUMENT', 'L-BFGS-B: the problem has no variables (N .LE. 0)');
    if (!Number.isInteger(m) || m <= 0) throw new SslInvError('ERR_INVALID_ARGUMENT', `L-BFGS-B: m must be an integer >= 1, got ${m}`);
    if (!(this.factr >= 0)) throw new SslInvError('ERR_INVALID_ARGUMENT', `L-BFGS-B: ftol must be >= 0, got ${ftol}`);
    if (!(this.maxls > 0)) throw new SslInvError('ERR_INVALID_ARGUMENT', 'L-BFGS-B: maxls must be positive');
    this.n = n;
    this.m = m;
    this.tol = this.factr * EPSMCH;
    this.vectors = makeVectors ? makeVectors(n, m) : new HostLbfgsbVectors(n, m);
    this.vectors.write(X, x0);
    this.sy = new Float64Array(m * m);
    this.ss = new Float64Array(m * m);
    this.wt = new Float64Array(m * m);
    this.wn = new Float64Array(4 * m * m);
    this.snd = new Float64Array(4 * m * m);
    this.wv = new Float64Array(2 * m);
    this.dots = new Float64Array(2 * m);
  }

  get done(): boolean {
    return this.phase === 'done';
  }

  /** What the solver needs now. */
  request(): LbfgsbRequest {
    if (this.phase === 'start') {
      this.phase = 'fg-start';
      return { kind: 'fg' };
    }
    if (this.phase === 'done') return { kind: 'done' };
    return { kind: 'fg' };
  }

  /**
   * The point where f and g are requested; the final iterate once done. For host vectors this is a
   * live view (valid until the next tell); for device vectors a copy read back from the device.
   */
  get x(): Float64Array {
    return this.vectors instanceof HostLbfgsbVectors ? this.vectors.view(X) : this.vectors.read(X);
  }

  /** Gives f and g at `x` (g is copied into the solver's vectors). */
  tell(f: number, g: ArrayLike<number>): void {
    this.expectEvaluation();
    if (g.length !== this.n) throw new SslInvError('ERR_SHAPE_MISMATCH', `L-BFGS-B: gradient of length ${g.length}, expected ${this.n}`);
    this.vectors.write(G, g);
    this.accept(f);
  }

  /** Gives f at `x` when the objective has already written g into the vectors' g slot (device objectives). */
  tellWithGradientInPlace(f: number): void {
    this.expectEvaluation();
    this.accept(f);
  }

  private expectEvaluation(): void {
    if (this.phase !== 'fg-start' && this.phase !== 'fg-ln') {
      throw new SslInvError('ERR_INVALID_ARGUMENT', 'L-BFGS-B: tell() called when no evaluation was requested');
    }
  }

  private accept(f: number): void {
    // ScalarFunction counts an evaluation only when x changed since the last one
    if (this.vectors.takeEvaluatedX()) this.nfev++;
    this.f = f;
    if (this.phase === 'fg-start') this.afterStart();
    else this.afterLineSearchEval();
  }

  /** The result once done. */
  result(): LbfgsbResult {
    if (this.status === undefined) throw new SslInvError('ERR_INVALID_ARGUMENT', 'L-BFGS-B: the solver has not finished');
    const warnflag = this.status.startsWith('converged') ? 0 : this.status === 'abnormal-line-search' ? 2 : 1;
    return {
      x: this.vectors.read(X), f: this.f, g: this.vectors.read(G), nit: this.nit, nfev: this.nfev,
      status: this.status, warnflag, message: LBFGSB_MESSAGES[this.status],
    };
  }

  private finish(status: LbfgsbStatus): void {
    this.status = status;
    this.phase = 'done';
  }

  // mainlb after FG_START (label 111)
  private afterStart(): void {
    this.sbgnrm = this.vectors.projgr();
    if (this.sbgnrm <= this.pgtol) {
      this.finish('converged-pgtol');
      return;
    }
    this.iterate();
  }

  /** Resets the limited memory (every "refresh the lbfgs memory and restart the iteration"). */
  private resetMemory(): void {
    this.col = 0;
    this.head = 0;
    this.theta = 1;
    this.iupdat = 0;
    this.updatd = false;
  }

  // The loop body from label 222 up to the first line-search evaluation request.
  private iterate(): void {
    const v = this.vectors;
    for (;;) {
      if (this.col > 0) {
        // unconstrained with a non-empty memory: skip the search for the GCP
        v.copy(Z, X);
        const wrk = this.updatd;
        // subspace minimisation (label 333 onwards; nfree = n, col > 0)
        if (wrk) {
          if (this.formk() !== 0) {
            // nonpositive definiteness in Cholesky factorization: restart
            this.resetMemory();
            this.nrestart++;
            continue;
          }
        }
        // cmprlb: r = -g
        v.negate(R, G);
        if (this.subsm() !== 0) {
          // singular triangular system: restart
          this.resetMemory();
          this.nrestart++;
          continue;
        }
      } else {
        // cauchy with col = 0, theta = 1, every variable free and unbounded: the GCP is x + dtm * (-g)
        this.cauchyEmptyMemory();
        // freev: every variable is free; wrk = updatd (no subspace step when col = 0)
      }
      // label 555: d = z - x
      v.sub(D, Z, X);
      // lnsrlb, first entry
      this.dtd = v.dot(D, D);
      this.dnorm = Math.sqrt(this.dtd);
      const stpmx = BIG;
      if (this.iter === 0) this.stp = Math.min(1 / this.dnorm, stpmx); // not boxed
      else this.stp = 1;
      v.copy(T, X);
      v.copy(R, G);
      this.fold = this.f;
      this.ifun = 0;
      this.iback = 0;
      this.csrch = new Dcsrch();
      if (this.lineSearchStep()) return; // an evaluation was requested, or the run ended
      // the line search failed before any evaluation (ascent direction): handled inside
    }
  }

  /**
   * lnsrlb from label 556 and mainlb's handling of its outcome. Returns true when the caller must
   * stop the current loop pass (an evaluation was requested, a new iterate was accepted, or the run
   * ended); false when the memory was reset and the loop must start again at label 222.
   */
  private lineSearchStep(): boolean {
    const v = this.vectors;
    this.gd = v.dot(G, D);
    let info = 0;
    if (this.ifun === 0) {
      this.gdold = this.gd;
      if (this.gd >= 0) info = -4; // ascent direction in projection
    }
    let csrchDone = false;
    if (info === 0) {
      this.stp = this.csrch.step(this.f, this.gd, this.stp, LS_FTOL, LS_GTOL, LS_XTOL, 0, BIG);
      if (this.csrch.task === 'ERROR') {
        throw new SslInvError('ERR_NATIVE_INTERNAL', `L-BFGS-B line search: ${this.csrch.message}`);
      }
      if (this.csrch.task === 'CONVERGENCE' || this.csrch.task === 'WARNING') {
        csrchDone = true;
      } else {
        this.ifun++;
        this.iback = this.ifun - 1;
        // x = stp * d + t (the sum is the same as t + stp * d), or z itself for a unit step
        if (this.stp === 1) v.copy(X, Z);
        else v.axpy(X, T, this.stp, D);
      }
    }
    if (info !== 0 || this.iback >= this.maxls) {
      // restore the previous iterate
      v.copy(X, T);
      v.copy(G, R);
      this.f = this.fold;
      if (this.col === 0) {
        // abnormal termination (scipy's driver does not count this iteration in nit)
        this.finish('abnormal-line-search');
        return true;
      }
      this.resetMemory();
      this.nrestart++;
      return false;
    }
    if (!csrchDone) {
      this.phase = 'fg-ln';
      return true;
    }
    // NEW_X
    this.iter++;
    this.sbgnrm = v.projgr();
    this.nit++;
    if (this.callback) this.callback(this.x, this.f);
    if (this.nit >= this.maxiter) {
      this.finish('max-iterations');
      return true;
    }
    if (this.nfev > this.maxfun) {
      this.finish('max-evaluations');
      return true;
    }
    this.afterNewX();
    return true;
  }

  private afterLineSearchEval(): void {
    if (this.lineSearchStep()) return;
    this.iterate();
  }

  // mainlb label 777: the stopping tests and the memory update, then back to 222.
  private afterNewX(): void {
    const v = this.vectors;
    if (this.sbgnrm <= this.pgtol) {
      this.finish('converged-pgtol');
      return;
    }
    let ddum = max3(Math.abs(this.fold), Math.abs(this.f), 1);
    if (this.fold - this.f <= this.tol * ddum) {
      this.finish('converged-factr');
      return;
    }
    v.sub(R, G, R);
    const rr = v.dot(R, R);
    let dr: number;
    if (this.stp === 1) {
      dr = this.gd - this.gdold;
      ddum = -this.gdold;
    } else {
      dr = (this.gd - this.gdold) * this.stp;
      v.scale(D, D, this.stp);
      ddum = -this.gdold * this.stp;
    }
    if (dr <= EPSMCH * ddum) {
      // skip the L-BFGS update
      this.nskip++;
      this.updatd = false;
      this.phase = 'fg-ln';
      this.iterate();
      return;
    }
    this.updatd = true;
    this.iupdat++;
    this.matupd(rr, dr);
    if (this.formt() !== 0) {
      this.resetMemory();
      this.nrestart++;
    }
    this.phase = 'fg-ln';
    this.iterate();
  }

  // cauchy, for col = 0, theta = 1 and no bounds: no breakpoints, d = -g, xcp = x + dtm * d.
  private cauchyEmptyMemory(): void {
    const v = this.vectors;
    if (this.sbgnrm <= 0) {
      v.copy(Z, X);
      return;
    }
    // d = -g (cauchy's d is a work vector here; mainlb overwrites it at label 555) and
    // f1 = sum of -(d_i d_i) in order, which is -(g . g) exactly (rounding is symmetric in sign)
    v.negate(D, G);
    const f1 = -v.dot(G, G);
    v.copy(Z, X);
    const f2 = -this.theta * f1;
    let dtm = -f1 / f2;
    // nbreak = 0: the GCP is at dtm along d
    if (dtm <= 0) dtm = 0;
    const tsum = 0 + dtm;
    if (tsum !== 0) v.axpy(Z, Z, tsum, D);
  }

  // matupd: append s = d and y = r to the memory, update theta, S'Y and S'S.
  private matupd(rr: number, dr: number): void {
    const m = this.m, v = this.vectors;
    if (this.iupdat <= m) {
      this.col = this.iupdat;
      this.itail = (this.head + this.iupdat - 1) % m;
    } else {
      this.itail = (this.itail + 1) % m;
      this.head = (this.head + 1) % m;
    }
    const sy = this.sy, ss = this.ss;
    v.copy(WS(this.itail), D);
    v.copy(WY(m, this.itail), R);
    this.theta = rr / dr;
    const col = this.col;
    if (this.iupdat > m) {
      // move old information
      for (let j = 1; j <= col - 1; j++) {
        // dcopy(j, ss(2,j+1), 1, ss(1,j), 1): column j+1 rows 2..j+1 -> column j rows 1..j
        for (let i = 0; i < j; i++) ss[i + (j - 1) * m] = ss[i + 1 + j * m]!;
        // dcopy(col-j, sy(j+1,j+1), 1, sy(j,j), 1): column j+1 rows j+1..col -> column j rows j..col-1
        for (let i = 0; i < col - j; i++) sy[j - 1 + i + (j - 1) * m] = sy[j + i + j * m]!;
      }
    }
    // add new information: the last row of SY and the last column of SS (d . wy_j and ws_j . d)
    const ys: number[] = [];
    let pointr = this.head;
    for (let j = 0; j < col - 1; j++) {
      ys.push(WY(m, pointr), WS(pointr));
      pointr = (pointr + 1) % m;
    }
    const dots = this.dots;
    if (ys.length > 0) v.dots(D, ys, dots);
    for (let j = 0; j < col - 1; j++) {
      sy[col - 1 + j * m] = dots[2 * j]!;
      ss[j + (col - 1) * m] = dots[2 * j + 1]!;
    }
    ss[col - 1 + (col - 1) * m] = this.stp === 1 ? this.dtd : this.stp * this.stp * this.dtd;
    sy[col - 1 + (col - 1) * m] = dr;
  }

  // formt: the upper half of T = theta*SS + L*D^(-1)*L', Cholesky-factorised in wt. Returns info.
  private formt(): number {
    const m = this.m, col = this.col, wt = this.wt, sy = this.sy, ss = this.ss, theta = this.theta;
    for (let j = 0; j < col; j++) wt[j * m] = theta * ss[j * m]!;
    for (let i = 1; i < col; i++) {
      for (let j = i; j < col; j++) {
        const k1 = Math.min(i, j); // Fortran: min(i,j) - 1 terms, 1-based
        let ddum = 0;
        for (let k = 0; k < k1; k++) ddum = ddum + (sy[i + k * m]! * sy[j + k * m]!) / sy[k + k * m]!;
        wt[i + j * m] = ddum + theta * ss[i + j * m]!;
      }
    }
    return dpofa(wt, 0, m, col) !== 0 ? -3 : 0;
  }

  // formk for nbd = 0 (Z = I, no active set, nenter = 0, ileave = n + 1) and updatd = true.
  private formk(): number {
    const m = this.m, col = this.col, head = this.head;
    const m2 = 2 * m;
    const wn1 = this.snd, wn = this.wn, sy = this.sy, theta = this.theta;
    const W1 = (i: number, j: number) => i + j * m2; // 0-based (i, j) of wn1 / wn
    if (this.updatd) {
      if (this.iupdat > m) {
        // shift old part of wn1
        for (let jy = 1; jy <= m - 1; jy++) {
          const js = m + jy;
          // dcopy(m-jy, wn1(jy+1,jy+1),1, wn1(jy,jy),1)
          for (let i = 0; i < m - jy; i++) wn1[W1(jy - 1 + i, jy - 1)] = wn1[W1(jy + i, jy)]!;
          // dcopy(m-jy, wn1(js+1,js+1),1, wn1(js,js),1)
          for (let i = 0; i < m - jy; i++) wn1[W1(js - 1 + i, js - 1)] = wn1[W1(js + i, js)]!;
          // dcopy(m-1, wn1(m+2,jy+1),1, wn1(m+1,jy),1)
          for (let i = 0; i < m - 1; i++) wn1[W1(m + i, jy - 1)] = wn1[W1(m + 1 + i, jy)]!;
        }
      }
      // put new rows in blocks (1,1), (2,1) and (2,2)
      const iy = col - 1; // 0-based row of the newest pair in the Y'Y block
      const is = m + col - 1;
      // Both loops dot the newest y (column `newest` of wy) with every stored pair: the col
      // products y_new . y_j and the col products s_i . y_new, computed together.
      const newest = (head + col - 1) % m;
      const ys: number[] = [];
      let p = head;
      for (let j = 0; j < col; j++) {
        ys.push(WY(m, p), WS(p));
        p = (p + 1) % m;
      }
      const dots = this.dots;
      this.vectors.dots(WY(m, newest), ys, dots);
      for (let jy = 0; jy < col; jy++) {
        const js = m + jy;
        // Y'ZZ'Y over the free variables (all of them)
        wn1[W1(iy, jy)] = dots[2 * jy]!;
        wn1[W1(is, js)] = 0; // S'AA'S over the active set (empty)
        wn1[W1(is, jy)] = 0; // S'AA'Y over the active set (empty)
      }
      // put new column in block (2,1): S'ZZ'Y over the free variables
      const jy = col - 1;
      for (let i = 0; i < col; i++) wn1[W1(m + i, jy)] = dots[2 * i + 1]!;
      // (the loops over entering and leaving variables add exact zeros for nbd = 0)
    }
    // form the upper triangle of WN = [D+Y'ZZ'Y/theta   -L_a'+R_z' ]
    //                                 [-L_a +R_z        S'AA'S*theta]
    for (let iy = 0; iy < col; iy++) {
      const is = col + iy, is1 = m + iy;
      for (let jy = 0; jy <= iy; jy++) {
        const js = col + jy, js1 = m + jy;
        wn[W1(jy, iy)] = wn1[W1(iy, jy)]! / theta;
        wn[W1(js, is)] = wn1[W1(is1, js1)]! * theta;
      }
      for (let jy = 0; jy < iy; jy++) wn[W1(jy, is)] = -wn1[W1(is1, jy)]!;
      for (let jy = iy; jy < col; jy++) wn[W1(jy, is)] = wn1[W1(is1, jy)]!;
      wn[W1(iy, iy)] = wn[W1(iy, iy)]! + sy[iy + iy * m]!;
    }
    // LEL^T factorisation: first Cholesky of the (1,1) block
    if (dpofa(wn, 0, m2, col) !== 0) return -1;
    // then form L^-1(-L_a'+R_z') in the (1,2) block
    const col2 = 2 * col;
    for (let js = col; js < col2; js++) dtrslUpper(wn, m2, col, wn, js * m2, true);
    // form S'AA'S*theta + (L^-1(-L_a'+R_z'))'L^-1(-L_a'+R_z') in the upper triangle of (2,2)
    for (let is = col; is < col2; is++) {
      for (let js = is; js < col2; js++) {
        wn[W1(is, js)] = wn[W1(is, js)]! + ddot(col, wn, is * m2, wn, js * m2);
      }
    }
    // Cholesky of the (2,2) block
    if (dpofa(wn, col + col * m2, m2, col) !== 0) return -2;
    return 0;
  }

  // subsm for nbd = 0: d := -B^{-1} g on the free variables (all), z := z + d. Returns info.
  private subsm(): number {
    const m = this.m, col = this.col, theta = this.theta;
    const wv = this.wv, wn = this.wn, v = this.vectors;
    // compute wv = W'Zd, d being r here (the 2 col dot products in one call: the same sums)
    let pointr = this.head;
    const ys: number[] = [], wySlots: number[] = [], wsSlots: number[] = [];
    for (let i = 0; i < col; i++) {
      ys.push(WY(m, pointr), WS(pointr));
      wySlots.push(WY(m, pointr));
      wsSlots.push(WS(pointr));
      pointr = (pointr + 1) % m;
    }
    const dots = this.dots;
    v.dots(R, ys, dots);
    for (let i = 0; i < col; i++) {
      wv[i] = dots[2 * i]!;
      wv[col + i] = theta * dots[2 * i + 1]!;
    }
    // compute wv := K^(-1) wv
    const m2 = 2 * m, col2 = 2 * col;
    if (dtrslUpper(wn, m2, col2, wv, 0, true) !== 0) return -1;
    for (let i = 0; i < col; i++) wv[i] = -wv[i]!;
    if (dtrslUpper(wn, m2, col2, wv, 0, false) !== 0) return -1;
    // compute d = (1/theta)d + (1/theta**2)Z'W wv, then the projected step z = z + d (no bounds, so
    // x_k + d_k for every variable and iword = 0)
    v.subsmUpdate(wySlots, wsSlots, wv.subarray(0, col), wv.subarray(col, col2), theta);
    return 0;
  }
}

/** scipy.optimize.minimize(fun, x0, jac=True, method='L-BFGS-B', options) for an unconstrained problem. */
export function minimizeLbfgsb(fun: (x: Float64Array) => { f: number; g: ArrayLike<number> }, x0: ArrayLike<number>,
  opts: LbfgsbOptions = {}): LbfgsbResult {
  const s = new LbfgsbSolver(x0, opts);
  while (s.request().kind === 'fg') {
    const { f, g } = fun(s.x);
    s.tell(f, g);
  }
  return s.result();
}

/**
 * runLbfgsbBatch for objectives that write each gradient straight into its solver's vectors (on a
 * device): `evaluate` gets the indices of the solvers still running, evaluates them at their x,
 * writes their g and returns their f in the same order.
 */
export function runLbfgsbBatchInPlace(solvers: LbfgsbSolver[], evaluate: (active: number[]) => number[],
  onRound?: (active: number) => void): LbfgsbResult[] {
  for (;;) {
    const active: number[] = [];
    for (let i = 0; i < solvers.length; i++) if (solvers[i]!.request().kind === 'fg') active.push(i);
    if (active.length === 0) break;
    const f = evaluate(active);
    for (let k = 0; k < active.length; k++) solvers[active[k]!]!.tellWithGradientInPlace(f[k]!);
    onRound?.(active.length);
  }
  return solvers.map((s) => s.result());
}

/**
 * Runs independent problems in lockstep: each round, every unfinished solver asks for f and g at its
 * `x`, and `evaluate` answers all of them at once (one batched evaluation, e.g. one GEMM over the
 * stacked weights). `evaluate` receives the indices of the solvers still running and returns their f
 * and g in the same order.
 */
export function runLbfgsbBatch(solvers: LbfgsbSolver[],
  evaluate: (active: number[], xs: Float64Array[]) => { f: number[]; g: ArrayLike<number>[] },
  onRound?: (active: number) => void): LbfgsbResult[] {
  for (;;) {
    const active: number[] = [];
    for (let i = 0; i < solvers.length; i++) if (solvers[i]!.request().kind === 'fg') active.push(i);
    if (active.length === 0) break;
    const { f, g } = evaluate(active, active.map((i) => solvers[i]!.x));
    for (let k = 0; k < active.length; k++) solvers[active[k]!]!.tell(f[k]!, g[k]!);
    onRound?.(active.length);
  }
  return solvers.map((s) => s.result());
}
