/**
 * MoCo's projection head on the CPU or a CUDA device, trainable: `fc` of the encoder, either one
 * Linear(D, dim) (MoCo v1) or, with `mlp`, Sequential(Linear(D, D), ReLU, Linear(D, dim)) (MoCo v2;
 * the state-dict names are fc.0.* and fc.2.*, as nn.Sequential numbers its children).
 *
 * Shapes: input features x [N, D]; output [N, dim]; weights in PyTorch's [out, in] layout.
 * Backward of a linear layer y = x W^T + b: dW = dy^T x [out, in], db = column sums of dy, dx = dy W.
 * The parameters live on `device` (the constructor's last argument, default the CPU); inputs and
 * gradients must be there too, and every op runs there (ops.matmul: cuBLAS on a CUDA device).
 */
import { SslInvError } from '../errors';
import * as ops from '../ops';
import { Tensor, moveTo, tensor } from '../tensor';
import { momentumUpdate, reluBackward, sumRows } from '../backward/layers';
import { SGD } from '../optim/sgd';
import { DeviceSpec, resolveDevice } from '../device';

export interface HeadTape {
  /** Input of each linear layer, in order. */
  inputs: Tensor[];
  /** Tensors the tape owns (the hidden ReLU outputs). */
  owned: Tensor[];
}

/** Parameter names relative to the encoder (fc.*), in named_parameters() order. */
export function headParameterNames(mlp: boolean): string[] {
  return mlp ? ['fc.0.weight', 'fc.0.bias', 'fc.2.weight', 'fc.2.bias'] : ['fc.weight', 'fc.bias'];
}

/** Shapes of the head's parameters for input width D and output width dim. */
export function headShapes(mlp: boolean, inDim: number, dim: number): Map<string, number[]> {
  const names = headParameterNames(mlp);
  const layers = mlp ? [[inDim, inDim], [dim, inDim]] : [[dim, inDim]];
  const m = new Map<string, number[]>();
  layers.forEach(([out, inp], i) => {
    m.set(names[2 * i]!, [out!, inp!]);
    m.set(names[2 * i + 1]!, [out!]);
  });
  return m;
}

export class LinearHead {
  readonly mlp: boolean;
  readonly inDim: number;
  readonly dim: number;
  /** Where the parameters are ('cpu' or 'cuda:N'). */
  readonly device: DeviceSpec;
  params: Map<string, Tensor>;

  constructor(mlp: boolean, inDim: number, dim: number, values: (key: string, shape: number[]) => Float32Array, device = 'cpu') {
    this.mlp = mlp;
    this.inDim = inDim;
    this.dim = dim;
    this.device = resolveDevice(device);
    this.params = new Map();
    try {
      for (const [k, shape] of headShapes(mlp, inDim, dim)) {
        const v = values(k, shape);
        const n = shape.reduce((a, b) => a * b, 1);
        if (v.length !== n) throw new SslInvError('ERR_SHAPE_MISMATCH', `expected ${n} values for [${shape.join(', ')}], got ${v.length}`, { field: k });
        this.params.set(k, moveTo(tensor(v, shape), this.device));
      }
    } catch (e) {
      for (const t of this.params.values()) t.dispose();
      throw e;
    }
  }

  private layers(): [Tensor, Tensor][] {
    const n = headParameterNames(this.mlp);
    const out: [Tensor, Tensor][] = [];
    for (let i = 0; i < n.length; i += 2) out.push([this.params.get(n[i]!)!, this.params.get(n[i + 1]!)!]);
    return out;
  }

  /** out [N, dim] of x [N, D] and what backward needs (x itself is referenced, not owned). */
  forward(x: Tensor): { out: Tensor; tape: HeadTape } {
    const tape: HeadTape = { inputs: [], owned: [] };
    let h = x;
    const layers = this.layers();
    try {
      layers.forEach(([w, b], i) => {
        tape.inputs.push(h);
        const last = i === layers.length - 1;
        const y = ops.matmul(h, w, { transB: true, bias: b, relu: !last });
        if (!last) tape.owned.push(y);
        h = y;
      });
    } catch (e) {
      for (const t of tape.owned) t.dispose();
      throw e;
    }
    return { out: h, tape };
  }

  /** Gradients by fc.* name and dL/dx; frees the tape. */
  backward(tape: HeadTape, dOut: Tensor): { grads: Map<string, Tensor>; dx: Tensor } {
    const names = headParameterNames(this.mlp);
    const layers = this.layers();
    const grads = new Map<string, Tensor>();
    let d = dOut;
    try {
      for (let i = layers.length - 1; i >= 0; i--) {
        const x = tape.inputs[i]!;
        const [w] = layers[i]!;
        grads.set(names[2 * i]!, ops.matmul(d, x, { transA: true }));
        grads.set(names[2 * i + 1]!, sumRows(d));
        let dx = ops.matmul(d, w);
        if (i > 0) {
          // x of this layer is the ReLU output of the previous one.
          const masked = reluBackward(dx, x);
          dx.dispose();
          dx = masked;
        }
        if (d !== dOut) d.dispose();
        d = dx;
      }
      return { grads: new Map(names.map((k) => [k, grads.get(k)!])), dx: d };
    } catch (e) {
      if (d !== dOut) d.dispose();
      for (const g of grads.values()) g.dispose();
      throw e;
    } finally {
      for (const t of tape.owned) t.dispose();
    }
  }

  /** One optimiser step with backward()'s gradients; the replaced tensors are freed. */
  step(optimizer: SGD, grads: Map<string, Tensor>): void {
    for (const k of this.params.keys()) {
      if (!grads.has(k)) throw new SslInvError('ERR_INVALID_ARGUMENT', 'no gradient for this parameter', { field: k });
    }
    const next = optimizer.step(this.params, grads);
    for (const [k, t] of this.params) if (next.get(k) !== t) t.dispose();
    this.params = next;
  }

  /** MoCo's key-encoder update: p <- p * m + p_q * (1 - m). */
  momentumUpdateFrom(q: LinearHead, m: number): void {
    for (const [k, t] of this.params) {
      this.params.set(k, momentumUpdate(t, q.params.get(k)!, m));
      t.dispose();
    }
  }

  /** Overwrites every parameter with q's. */
  copyParametersFrom(q: LinearHead): void {
    for (const [k, t] of this.params) {
      this.params.set(k, q.params.get(k)!.clone());
      t.dispose();
    }
  }

  dispose(): void {
    for (const t of this.params.values()) t.dispose();
  }

  /** For `using` declarations: the same as dispose(). */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
