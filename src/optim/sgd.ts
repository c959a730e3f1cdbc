/**
 * torch.optim.SGD (PyTorch 1.13) for float32 tensors on the CPU or a CUDA device: the step of one
 * parameter (`sgdStep`) and an optimiser over named parameters that keeps the momentum buffers
 * (`SGD`; `step` returns new tensors, `stepInPlace` writes the same values into the parameters for
 * their owner). Native kernels in native/cpu/sgd.cc and native/cuda/sgd.cu. A step runs on the device
 * of its parameter; its gradient and momentum buffer must be there too (else ERR_DEVICE_UNAVAILABLE),
 * and the buffers an optimiser creates live there. The device kernel performs the CPU kernel's
 * operations element for element (fused multiply-adds exactly where it has them), so a step on a
 * GPU gives the same bits as on the CPU (NaN payloads aside).
 *
 * The arithmetic is _single_tensor_sgd's with PyTorch's float32 roundings (native/ops/sgd.h): each
 * `a.add(b, alpha=s)` there is one fused multiply-add in PyTorch's vectorised CPU kernels, so it is
 * one here too, and every scalar is rounded to float32 as PyTorch does. Results are the same bits as
 * PyTorch's on an x86-64 CPU where it runs its AVX2/AVX-512 kernels (test/backward/sgd.test.ts
 * checks three steps against torch's own numbers); PyTorch's no-FMA fallback build would differ in
 * the last bit.
 *
 * MoCo v2's pre-training uses lr 0.03 (cosine schedule), momentum 0.9, weight decay 1e-4.
 */
import { SslInvError, callNative } from '../errors';
import { NativeAddon, NativeTensor, nativeOps } from '../native';
import { Tensor, wrap } from '../tensor';

export interface SgdOptions {
  /** Learning rate, >= 0. */
  lr: number;
  /** Momentum factor, >= 0 (default 0: no buffers). */
  momentum?: number;
  /** L2 penalty added to the gradient, >= 0 (default 0). */
  weightDecay?: number;
  /** Dampening of the momentum (default 0). */
  dampening?: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
}

type NativeSgdOptions = { lr: number; momentum: number; weightDecay: number; dampening: number; nesterov: boolean };

interface SgdAddon {
  sgdStep(param: NativeTensor, grad: NativeTensor, buffer: NativeTensor | undefined,
    opts: NativeSgdOptions): NativeTensor[];
  sgdStepInPlace(params: NativeTensor[], grads: NativeTensor[], buffers: (NativeTensor | undefined)[],
    opts: NativeSgdOptions): (NativeTensor | undefined)[];
}

function addon(): NativeAddon & SgdAddon {
  return nativeOps<SgdAddon>('SGD', ['sgdStep', 'sgdStepInPlace', 'momentumUpdate']);
}

function invalid(message: string, field?: string): never {
  throw new SslInvError('ERR_INVALID_ARGUMENT', message, field !== undefined ? { field } : {});
}

/** The options with defaults, checked by torch.optim.SGD's rules (plus finiteness). */
function resolve(o: SgdOptions): Required<SgdOptions> {
  if (o === null || typeof o !== 'object') invalid('SGD: expected an options object {lr, momentum?, ...}');
  const r: Required<SgdOptions> = {
    lr: o.lr, momentum: o.momentum ?? 0, weightDecay: o.weightDecay ?? 0, dampening: o.dampening ?? 0,
    nesterov: o.nesterov ?? false,
  };
  for (const k of ['lr', 'momentum', 'weightDecay'] as const) {
    if (typeof r[k] !== 'number' || !Number.isFinite(r[k]) || r[k] < 0) {
      invalid(`SGD: ${k} must be a finite number >= 0, got ${String(r[k])}`, k);
    }
  }
  if (typeof r.dampening !== 'number' || !Number.isFinite(r.dampening)) {
    invalid(`SGD: dampening must be a finite number, got ${String(r.dampening)}`, 'dampening');
  }
  if (typeof r.nesterov !== 'boolean') invalid('SGD: nesterov must be a boolean', 'nesterov');
  if (r.nesterov && (r.momentum <= 0 || r.dampening !== 0)) {
    invalid('SGD: Nesterov momentum requires a momentum > 0 and zero dampening', 'nesterov');
  }
  return r;
}

/**
 * One torch.optim.SGD (1.13) step for one parameter:
 *   d = grad (+ weightDecay * param)
 *   with momentum: buf = d on the first step (buffer undefined), else buf = momentum * buf + (1 - dampening) * d;
 *                  d = nesterov ? d + momentum * buf : buf
 *   param' = param - lr * d
 * Returns the new param and buffer (undefined without momentum; passing a buffer then is an error).
 * The inputs are untouched.
 */
export function sgdStep(param: Tensor, grad: Tensor, buffer: Tensor | undefined, o: SgdOptions):
  { param: Tensor; buffer?: Tensor } {
  const r = resolve(o);
  return callNative('sgdStep', () => {
    const [p, b] = addon().sgdStep(param.handle, grad.handle, buffer?.handle, r);
    return b !== undefined ? { param: wrap(p!), buffer: wrap(b) } : { param: wrap(p!) };
  });
}

/**
 * torch.optim.SGD over named parameters. It owns the momentum buffers (disposing each one it
 * replaces, and all of them in dispose()); `step` returns new parameter tensors and leaves the ones
 * passed in untouched, for the caller to dispose. `lr` may be changed between steps (schedules).
 * Each parameter's buffer is created on that parameter's device; its gradient must be there too.
 *
 * The returned map has every parameter, in the order passed. As in PyTorch, a parameter without a
 * gradient is skipped: the map holds the very tensor passed in (so dispose only the old tensors that
 * are not in the new map: `if (next.get(k) !== old) old.dispose()`), and its buffer is left as it
 * is. A gradient whose name is not a parameter is an error. A step is all or nothing: if any
 * parameter fails (a shape mismatch, say), no buffer is replaced and the new tensors made so far
 * are disposed.
 */
export class SGD {
  /** Learning rate of the next step. */
  lr: number;
  private readonly opts: Required<SgdOptions>;
  private readonly buffers = new Map<string, Tensor>();
  private disposed = false;

  constructor(o: SgdOptions) {
    this.opts = resolve(o);
    this.lr = this.opts.lr;
  }

  step(params: ReadonlyMap<string, Tensor>, grads: ReadonlyMap<string, Tensor>): Map<string, Tensor> {
    if (this.disposed) throw new SslInvError('ERR_INVALID_ARGUMENT', 'SGD: the optimiser was disposed');
    for (const name of grads.keys()) {
      if (!params.has(name)) invalid(`SGD: a gradient for '${name}', which is not a parameter`, name);
    }
    const o = { ...this.opts, lr: this.lr };
    const out = new Map<string, Tensor>();
    const newBuffers = new Map<string, Tensor>();
    try {
      for (const [name, param] of params) {
        const grad = grads.get(name);
        if (grad === undefined) {
          out.set(name, param);
          continue;
        }
        let r: { param: Tensor; buffer?: Tensor };
        try {
          r = sgdStep(param, grad, this.buffers.get(name), o);
        } catch (e) {
          throw e instanceof SslInvError ? new SslInvError(e.code, e.message, { field: name, cause: e }) : e;
        }
        out.set(name, r.param);
        if (r.buffer) newBuffers.set(name, r.buffer);
      }
    } catch (e) {
      for (const [name, t] of out) if (t !== params.get(name)) t.dispose();
      for (const t of newBuffers.values()) t.dispose();
      throw e;
    }
    for (const [name, b] of newBuffers) {
      this.buffers.get(name)?.dispose();
      this.buffers.set(name, b);
    }
    return out;
  }

  /**
   * The same step as `step`, written into the parameter tensors themselves: for owners of the
   * parameters (TrainableResNet.step) that would otherwise dispose each old tensor right away. Every
   * parameter with a gradient is overwritten with its new value (the same bits as `step` returns) and
   * its momentum buffer is updated in place; parameters without a gradient are skipped, as in `step`.
   * One native call updates all of them (one pass over each tensor, no new tensors after the first
   * step, which creates the buffers).
   *
   * All or nothing: every argument is checked first (a gradient for a name that is not a parameter,
   * a shape or dtype mismatch, two parameters sharing storage; ERR_DEVICE_UNAVAILABLE for parameters
   * on different devices, or a gradient or momentum buffer on another device than its parameter: one
   * call updates one device's tensors), and on any error nothing has been written. Anyone holding one
   * of these parameter tensors sees its new value (on a CUDA device, once the device's stream has run
   * the update: later work on that device and copies to the host see it).
   */
  stepInPlace(params: ReadonlyMap<string, Tensor>, grads: ReadonlyMap<string, Tensor>): void {
    if (this.disposed) throw new SslInvError('ERR_INVALID_ARGUMENT', 'SGD: the optimiser was disposed');
    for (const name of grads.keys()) {
      if (!params.has(name)) invalid(`SGD: a gradient for '${name}', which is not a parameter`, name);
    }
    const names = [...params.keys()].filter((k) => grads.has(k));
    const device = names.length > 0 ? params.get(names[0]!)!.device : 'cpu';
    for (const name of names) {
      // The per-tensor checks with the parameter's name in the message (the native call checks too).
      const p = params.get(name)!, g = grads.get(name)!, b = this.buffers.get(name);
      for (const [what, t] of [['parameter', p], ['gradient', g], ['momentum buffer', b]] as const) {
        if (t !== undefined && t.device !== device) {
          throw new SslInvError('ERR_DEVICE_UNAVAILABLE', `SGD: '${name}': the ${what} is on ${t.device} but the step runs on ${device} (the device of '${names[0]!}'); one stepInPlace updates one device's tensors`, { field: name });
        }
      }
      if (p.dtype !== 'float32' || g.dtype !== 'float32') {
        throw new SslInvError('ERR_DTYPE_MISMATCH', `SGD: '${name}': parameter and gradient must be float32, got ${p.dtype} and ${g.dtype}`, { field: name });
      }
      if (p.shape.length !== g.shape.length || p.shape.some((v, i) => v !== g.shape[i])) {
        throw new SslInvError('ERR_SHAPE_MISMATCH', `SGD: '${name}': gradient [${g.shape.join(', ')}] for a parameter [${p.shape.join(', ')}]`, { field: name });
      }
    }
    const o = { ...this.opts, lr: this.lr };
    const fresh = callNative('sgdStepInPlace', () => addon().sgdStepInPlace(
      names.map((k) => params.get(k)!.handle), names.map((k) => grads.get(k)!.handle),
      names.map((k) => this.buffers.get(k)?.handle), o));
    fresh.forEach((b, i) => { if (b !== undefined) this.buffers.set(names[i]!, wrap(b)); });
  }

  /** The options of the next step (lr: the current one), as torch's param_groups record them. */
  get options(): Required<SgdOptions> {
    return { ...this.opts, lr: this.lr };
  }

  /**
   * Sets the momentum buffer of a parameter (resuming from a checkpoint's optimizer state); the
   * optimiser takes ownership of `buffer` and disposes the one it replaces. The next step of that
   * parameter continues from it as PyTorch's would after load_state_dict; the buffer must then be on
   * the parameter's device (checked at that step: ERR_DEVICE_UNAVAILABLE).
   */
  setMomentumBuffer(name: string, buffer: Tensor): void {
    if (this.disposed) throw new SslInvError('ERR_INVALID_ARGUMENT', 'SGD: the optimiser was disposed');
    if (this.opts.momentum === 0) invalid('SGD: a momentum buffer, but momentum is 0', name);
    if (buffer.dtype !== 'float32') {
      throw new SslInvError('ERR_DTYPE_MISMATCH', `SGD: a momentum buffer must be float32, got ${buffer.dtype}`, { field: name });
    }
    this.buffers.get(name)?.dispose();
    this.buffers.set(name, buffer);
  }

  /** The momentum buffers by parameter name (owned by the optimiser: do not dispose them). */
  momentumBuffers(): ReadonlyMap<string, Tensor> {
    return this.buffers;
  }

  /** Disposes the momentum buffers; the optimiser cannot step afterwards. */
  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
    this.disposed = true;
  }

  /** For `using` declarations: the same as dispose(). */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
