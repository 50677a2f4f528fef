// How far FedIT's step (average A and B separately) is from the exact step (average the products),
// computed from r×r Gram blocks instead of out×in products.
//
// With normalised weights w_k, base factors B, A, device deltas dB_k, dA_k, their means d̄B, d̄A
// and the centred deltas cB_k = dB_k − d̄B, cA_k = dA_k − d̄A:
//   exact step  E = Σ w_k (B + dB_k)(A + dA_k) − B·A = B·d̄A + d̄B·A + d̄B·d̄A + Σ w_k cB_k·cA_k
//   FedIT error D = (B + d̄B)(A + d̄A) − Σ w_k (B + dB_k)(A + dA_k) = −Σ w_k cB_k·cA_k
// D is a weighted covariance: the base and the means cancel out of it exactly, so it is zero when
// the devices agree or A does not move, and a large adapter does not drown a small error. Both
// are sums Σ c_t P_t·Q_t of rank-r products, and ‖Σ c_t P_t Q_t‖²_F = Σ_{s,t} c_s c_t ⟨P_sᵀP_t,
// Q_s Q_tᵀ⟩_F, which needs only dot products between columns of the B factors and between rows
// of the A factors.
import { at, f32At, f64At } from '@flotilla/protocol';

/** Column-space inputs of one LoRA module (row-major float32, as the adapter stores them). */
export interface FeditErrorInput {
  /** lora_B before the round, [out, r]. */
  b: Float32Array;
  /** lora_A before the round, [r, in]. */
  a: Float32Array;
  /** Each device's lora_B delta, [out, r]. */
  deltaB: readonly Float32Array[];
  /** Each device's lora_A delta, [r, in]. */
  deltaA: readonly Float32Array[];
  /** One non-negative weight per device (examples); normalised here. */
  weights: readonly number[];
  out: number;
  in: number;
  rank: number;
}

/** Multiply-adds {@link feditRelativeError} spends: the two Gram matrices dominate. */
export function feditErrorCost(out: number, inDim: number, rank: number, devices: number): number {
  const columns = (devices + 2) * rank;
  return ((out + inDim) * columns * (columns + 1)) / 2 + (devices + 3) ** 2 * rank * rank;
}

/** Pairwise dot products of `vectors` (float64, symmetric, row-major [n, n]). */
function gram(vectors: readonly Float64Array[]): Float64Array {
  const n = vectors.length;
  const g = new Float64Array(n * n);
  for (let s = 0; s < n; s++) {
    const x = at(vectors, s);
    for (let t = s; t < n; t++) {
      const y = at(vectors, t);
      let dot = 0;
      for (let i = 0; i < x.length; i++) dot += f64At(x, i) * f64At(y, i);
      g[s * n + t] = dot;
      g[t * n + s] = dot;
    }
  }
  return g;
}

function weightedMean(vectors: readonly Float32Array[], weights: readonly number[], length: number) {
  const mean = new Float64Array(length);
  vectors.forEach((v, k) => {
    const w = at(weights, k);
    for (let i = 0; i < length; i++) mean[i] = f64At(mean, i) + w * f32At(v, i);
  });
  return mean;
}

function centred(delta: Float32Array, mean: Float64Array): Float64Array {
  const out = new Float64Array(mean.length);
  for (let i = 0; i < out.length; i++) out[i] = f32At(delta, i) - f64At(mean, i);
  return out;
}

/** The r columns of a row-major [rows, r] matrix. */
function columnsOf(m: ArrayLike<number>, rows: number, rank: number): Float64Array[] {
  return Array.from({ length: rank }, (_, c) => {
    const column = new Float64Array(rows);
    for (let i = 0; i < rows; i++) column[i] = at(m, i * rank + c);
    return column;
  });
}

/** The r rows of a row-major [r, cols] matrix. */
function rowsOf(m: ArrayLike<number>, rank: number, cols: number): Float64Array[] {
  return Array.from({ length: rank }, (_, r) => {
    const row = new Float64Array(cols);
    for (let j = 0; j < cols; j++) row[j] = at(m, r * cols + j);
    return row;
  });
}

/**
 * ‖FedIT step − exact step‖_F / ‖exact step‖_F for one module (0 when the exact step is zero and
 * FedIT agrees with it). Exact in float64 up to rounding; costs {@link feditErrorCost}.
 */
export function feditRelativeError(input: FeditErrorInput): number {
  const { out, rank } = input;
  const inDim = input.in;
  const total = input.weights.reduce((s, w) => s + w, 0);
  const weights = input.weights.map((w) => (total > 0 ? w / total : 0));
  const devices = input.deltaB.length;
  // Factor 0: the mean delta; 1: the base; 2 + k: device k's centred delta.
  const meanB = weightedMean(input.deltaB, weights, out * rank);
  const meanA = weightedMean(input.deltaA, weights, rank * inDim);
  const bFactors = [meanB, input.b, ...input.deltaB.map((d) => centred(d, meanB))];
  const aFactors = [meanA, input.a, ...input.deltaA.map((d) => centred(d, meanA))];
  const gB = gram(bFactors.flatMap((f) => columnsOf(f, out, rank)));
  const gA = gram(aFactors.flatMap((f) => rowsOf(f, rank, inDim)));
  const n = bFactors.length * rank;
  // Terms P_t·Q_t by factor index: d̄B·d̄A, B·d̄A, d̄B·A, then cB_k·cA_k.
  const terms: Array<[number, number]> = [
    [0, 0],
    [1, 0],
    [0, 1],
    ...Array.from({ length: devices }, (_, k): [number, number] => [2 + k, 2 + k]),
  ];
  const inner = (s: number, t: number): number => {
    const [ps, qs] = at(terms, s);
    const [pt, qt] = at(terms, t);
    let sum = 0;
    for (let x = 0; x < rank; x++)
      for (let y = 0; y < rank; y++)
        sum +=
          f64At(gB, (ps * rank + x) * n + pt * rank + y) * f64At(gA, (qs * rank + x) * n + qt * rank + y);
    return sum;
  };
  const squaredNorm = (coefficients: readonly number[]): number => {
    let sum = 0;
    coefficients.forEach((cs, s) => {
      if (cs === 0) return;
      coefficients.forEach((ct, t) => {
        if (ct !== 0) sum += cs * ct * inner(s, t);
      });
    });
    return Math.max(0, sum);
  };
  const error = squaredNorm([0, 0, 0, ...weights.map((w) => -w)]);
  const exact = squaredNorm([1, 1, 1, ...weights]);
  if (exact === 0) return Math.sqrt(error);
  return Math.sqrt(error / exact);
}
