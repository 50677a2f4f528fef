import {
  FlotillaError,
  at,
  f32At,
  f64At,
  parseAdapterTensorName,
  type AdapterMode,
  type NamedTensor,
} from '@flotilla/protocol';
import { flattenTensors, unflattenTensors } from '../strategies/flatten.js';
import { updateAllocator } from '../strategies/kernel-arena.js';
import { accumulatorFootprint } from '../strategies/streaming-fedavg.js';
import { feditErrorCost, feditRelativeError } from './fedit-error.js';
import { jacobiSvd, matrix, multiply, thinQr, transpose, type Matrix } from './linear-algebra.js';

/** Largest multiply-add count the FedIT diagnostic may spend in one round (about 2 s here). */
export const FEDIT_DIAGNOSTIC_MAX_COST = 2e9;

/**
 * How LoRA deltas are combined:
 * - `ffa`: A is frozen and identical on every device (FFA-LoRA, Sun et al. 2024), so averaging B
 *   is exactly averaging the products. Refused when A deltas are non-zero.
 * - `fedit`: A and B averaged separately (FedIT, Zhang et al. 2024). Inexact: mean(B)·mean(A) ≠
 *   mean(B·A); the relative error is reported.
 * - `product`: average the full-rank products B_i·A_i exactly, then re-factor to rank r by a
 *   truncated SVD; the relative truncation error is reported.
 */
export type LoraRule = 'ffa' | 'fedit' | 'product';

/**
 * The rule that really runs for an adapter, and that the round log records. An ffa-lora adapter's
 * A is frozen (devices train only B, and a non-zero A delta is refused), so `fedit`, named or by
 * default, would compute exactly what `ffa` computes: `ffa` runs, which also keeps A out of the
 * strategy and out of DP noise. Every other combination runs the configured rule.
 */
export function effectiveLoraRule(mode: AdapterMode, configured: LoraRule): LoraRule {
  return mode === 'ffa-lora' && configured === 'fedit' ? 'ffa' : configured;
}

export type TensorMap = Map<string, NamedTensor>;

/**
 * The configured strategy over one flattened vector per device (weights, DP noise and any server
 * optimizer bound in). It is called once per round so that selection-based strategies (Krum,
 * Bulyan) pick the same devices for every tensor.
 */
export type CombineVectors = (vectors: Float32Array[]) => Float32Array;

export interface LoraAggregationInput {
  rule: LoraRule;
  /** Adapter the round started from (version n). */
  current: TensorMap;
  /** One delta per device (adapter after local training minus `current`), same names and shapes. */
  deltas: TensorMap[];
  /** FedAvg weights (examples per device), used for the exactness diagnostics only. */
  weights: number[];
  combine: CombineVectors;
  /** Multiply-adds the FedIT diagnostic may spend. Default {@link FEDIT_DIAGNOSTIC_MAX_COST}. */
  feditMaxCost?: number;
}

export interface LoraAggregationResult {
  /** Adapter version n+1. */
  adapter: TensorMap;
  rule: LoraRule;
  /**
   * fedit: ‖mean(B)·mean(A) − mean(BA)‖_F / ‖mean(BA) − B·A‖_F (weighted means; the error of
   * FedIT's step relative to the exact step), worst module. Null when too costly to compute
   * (see FEDIT_DIAGNOSTIC_MAX_COST).
   */
  feditRelativeError: number | null;
  /** product: ‖W − B'A'‖_F / ‖W‖_F after the rank-r truncation, worst module. */
  truncationRelativeError: number | null;
  /**
   * ffa and fedit: the combined step over the trainable tensors, exactly as the strategy returned
   * it (what an auditor recomputes from retained deltas). Null for the product rule, whose step
   * lives in product space.
   */
  step: TensorMap | null;
}

interface LoraModule {
  module: string;
  aName: string;
  bName: string;
}

function loraModules(current: TensorMap): LoraModule[] {
  const modules = new Map<string, Partial<LoraModule>>();
  for (const name of current.keys()) {
    const parsed = parseAdapterTensorName(name);
    // Bias offsets and full mode's kernel offsets are plain tensors: averaged as they are.
    if (!parsed || (parsed.kind !== 'lora_A' && parsed.kind !== 'lora_B')) continue;
    const entry = modules.get(parsed.module) ?? { module: parsed.module };
    if (parsed.kind === 'lora_A') entry.aName = name;
    else entry.bName = name;
    modules.set(parsed.module, entry);
  }
  return [...modules.values()]
    .map((m) => {
      if (!m.aName || !m.bName || !m.module) {
        throw new FlotillaError('SHAPE_MISMATCH', `module ${m.module ?? '?'} lacks lora_A or lora_B`);
      }
      return { module: m.module, aName: m.aName, bName: m.bName };
    })
    .sort((x, y) => (x.module < y.module ? -1 : x.module > y.module ? 1 : 0));
}

function tensorOf(map: TensorMap, name: string): NamedTensor {
  const tensor = map.get(name);
  if (!tensor) throw new FlotillaError('SHAPE_MISMATCH', `missing tensor ${name}`);
  return tensor;
}

function addInto(base: NamedTensor, delta: Float32Array): NamedTensor {
  const values = new Float32Array(base.values.length);
  for (let i = 0; i < values.length; i++) values[i] = f32At(base.values, i) + f32At(delta, i);
  return { shape: [...base.shape], values };
}

function toMatrix(t: NamedTensor): Matrix {
  return matrix(at(t.shape, 0), at(t.shape, 1), t.values);
}

export function aggregateLora(input: LoraAggregationInput): LoraAggregationResult {
  if (input.deltas.length === 0) throw new FlotillaError('INTERNAL', 'no deltas to aggregate');
  if (input.weights.length !== input.deltas.length)
    throw new FlotillaError('INTERNAL', 'one weight per delta is required');
  const modules = loraModules(input.current);
  if (input.rule === 'product' && modules.length > 0) return aggregateProducts(input, modules);

  if (input.rule === 'ffa') {
    for (const m of modules) {
      if (input.deltas.some((d) => tensorOf(d, m.aName).values.some((v) => v !== 0))) {
        // Loading refuses a delta that changes a frozen tensor, and registration the ffa rule on a
        // lora adapter: a non-zero A here is a bug.
        throw new FlotillaError(
          'INTERNAL',
          `ffa rule: module ${m.module} has a non-zero lora_A delta (A must stay frozen)`,
        );
      }
    }
  }
  // FFA-LoRA's A is public and frozen: it is left out of the combination entirely, so neither a
  // strategy nor DP noise ever touches it (noise on A would spend no privacy but ruin the model).
  const frozen = new Set(input.rule === 'ffa' ? modules.map((m) => m.aName) : []);
  const trainable = (map: TensorMap): TensorMap => new Map([...map].filter(([name]) => !frozen.has(name)));
  const { layout, values: currentValues } = flattenTensors(trainable(input.current));
  const allocate = allocatorFor(input.deltas.length, currentValues.length);
  const combined = input.combine(
    input.deltas.map((d) => flattenTensors(trainable(d), { expected: layout, allocate }).values),
  );
  const step = unflattenTensors(combined, layout);
  const adapter: TensorMap = new Map();
  for (const [name, tensor] of input.current) {
    adapter.set(
      name,
      frozen.has(name)
        ? { shape: [...tensor.shape], values: tensor.values.slice() }
        : addInto(tensor, tensorOf(step, name).values),
    );
  }
  if (input.rule === 'ffa')
    return { adapter, rule: 'ffa', feditRelativeError: null, truncationRelativeError: null, step };

  return {
    adapter,
    rule: 'fedit',
    feditRelativeError: worstFeditError(input, modules),
    truncationRelativeError: null,
    step,
  };
}

/**
 * FedIT's inexactness, worst module; null when the diagnostic would cost more than the budget
 * (a very large round of wide modules): it is a report, not a decision, and must not hold the
 * round up for minutes.
 */
function worstFeditError(input: LoraAggregationInput, modules: LoraModule[]): number | null {
  const shapes = modules.map((m) => {
    const [rank = 0, inDim = 0] = tensorOf(input.current, m.aName).shape;
    const [out = 0] = tensorOf(input.current, m.bName).shape;
    return { m, rank, inDim, out };
  });
  const cost = shapes.reduce(
    (sum, s) => sum + feditErrorCost(s.out, s.inDim, s.rank, input.deltas.length),
    0,
  );
  if (cost > (input.feditMaxCost ?? FEDIT_DIAGNOSTIC_MAX_COST)) return null;
  let worst = 0;
  for (const { m, rank, inDim, out } of shapes) {
    const error = feditRelativeError({
      b: tensorOf(input.current, m.bName).values,
      a: tensorOf(input.current, m.aName).values,
      deltaB: input.deltas.map((d) => tensorOf(d, m.bName).values),
      deltaA: input.deltas.map((d) => tensorOf(d, m.aName).values),
      weights: input.weights,
      out,
      in: inDim,
      rank,
    });
    worst = Math.max(worst, error);
  }
  return worst;
}

/** vec(B_i·A_i − B·A) for one device and module, row-major [out, in]. */
function productOf(current: TensorMap, delta: TensorMap, m: LoraModule): Float32Array {
  const a0 = tensorOf(current, m.aName);
  const b0 = tensorOf(current, m.bName);
  const base = multiply(toMatrix(b0), toMatrix(a0));
  const trained = multiply(
    toMatrix(addInto(b0, tensorOf(delta, m.bName).values)),
    toMatrix(addInto(a0, tensorOf(delta, m.aName).values)),
  );
  const out = new Float32Array(base.data.length);
  for (let i = 0; i < out.length; i++) out[i] = f64At(trained.data, i) - f64At(base.data, i);
  return out;
}

/**
 * product rule: each device's vector is [vec(B_i A_i − B A) per module…, other tensors' deltas],
 * combined once; then W = B·A + combined part is re-factored to rank r per module.
 */
function aggregateProducts(input: LoraAggregationInput, modules: LoraModule[]): LoraAggregationResult {
  const loraNames = new Set(modules.flatMap((m) => [m.aName, m.bName]));
  const others = new Map([...input.current].filter(([name]) => !loraNames.has(name)));
  const { layout: otherLayout } = flattenTensors(others);
  const sizes = modules.map(
    (m) => at(tensorOf(input.current, m.bName).shape, 0) * at(tensorOf(input.current, m.aName).shape, 1),
  );
  const productLength = sizes.reduce((s, n) => s + n, 0);
  const allocate = allocatorFor(input.deltas.length, productLength + flattenTensors(others).values.length);
  const vectors = input.deltas.map((d) => {
    const rest = flattenTensors(new Map([...d].filter(([name]) => !loraNames.has(name))), {
      expected: otherLayout,
    }).values;
    const v = allocate(productLength + rest.length);
    let offset = 0;
    modules.forEach((m) => {
      const p = productOf(input.current, d, m);
      v.set(p, offset);
      offset += p.length;
    });
    v.set(rest, offset);
    return v;
  });
  const combined = input.combine(vectors);
  const adapter: TensorMap = new Map();
  let offset = 0;
  let worst = 0;
  modules.forEach((m, k) => {
    const a0 = tensorOf(input.current, m.aName);
    const b0 = tensorOf(input.current, m.bName);
    const w = multiply(toMatrix(b0), toMatrix(a0));
    for (let i = 0; i < w.data.length; i++) w.data[i] = f64At(w.data, i) + f32At(combined, offset + i);
    offset += at(sizes, k);
    const { a, b, relativeError } = refactorToRank(w, at(a0.shape, 0));
    worst = Math.max(worst, relativeError);
    adapter.set(m.aName, { shape: [a.rows, a.cols], values: Float32Array.from(a.data) });
    adapter.set(m.bName, { shape: [b.rows, b.cols], values: Float32Array.from(b.data) });
  });
  const restStep = unflattenTensors(combined.slice(offset), otherLayout);
  for (const [name, tensor] of others) adapter.set(name, addInto(tensor, tensorOf(restStep, name).values));
  return { adapter, rule: 'product', feditRelativeError: null, truncationRelativeError: worst, step: null };
}

/**
 * The copy that flattens each device's delta writes it into memory the FedAvg kernel reads in
 * place, with room for the accumulator (see kernel-arena.ts); the JS heap past wasm32's 4 GiB.
 */
function allocatorFor(count: number, length: number): (length: number) => Float32Array {
  return updateAllocator(count, length, accumulatorFootprint(length));
}

/**
 * Best rank-r factorisation W ≈ B'·A' (Eckart–Young): B' = U_r·√S_r [out, r], A' = √S_r·V_rᵀ
 * [r, in]. The SVD is taken of the small triangular factor of a thin QR of W (or Wᵀ when W is
 * wide), so the cost is O(p·q²) rather than a full dense SVD.
 */
export function refactorToRank(w: Matrix, rank: number): { a: Matrix; b: Matrix; relativeError: number } {
  const tall = w.rows >= w.cols;
  const m = tall ? w : transpose(w);
  // m [p, q] with p ≥ q: m = Q R, SVD(R) = U_r S Vᵀ, so m = (Q U_r) S Vᵀ.
  const { q, r } = thinQr(m);
  const svd = jacobiSvd(r);
  const qu = multiply(q, svd.u);
  const k = Math.min(rank, svd.s.length);
  const left = matrix(m.rows, rank);
  const right = matrix(rank, m.cols);
  for (let j = 0; j < k; j++) {
    const root = Math.sqrt(f64At(svd.s, j));
    for (let i = 0; i < m.rows; i++) left.data[i * rank + j] = f64At(qu.data, i * qu.cols + j) * root;
    for (let i = 0; i < m.cols; i++)
      right.data[j * m.cols + i] = f64At(svd.v.data, i * svd.v.cols + j) * root;
  }
  // Rank-r truncation error by Eckart–Young: sqrt(Σ_{j>r} s_j²) / sqrt(Σ s_j²).
  let kept = 0;
  let total = 0;
  svd.s.forEach((s, j) => {
    total += s * s;
    if (j < k) kept += s * s;
  });
  const relativeError = total === 0 ? 0 : Math.sqrt(Math.max(0, total - kept) / total);
  // For W = left·right: B' = left [out, r], A' = right [r, in]; transposed case swaps the roles.
  return tall
    ? { b: left, a: right, relativeError }
    : { b: transpose(right), a: transpose(left), relativeError };
}
