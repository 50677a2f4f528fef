// Hierarchical FedAvg, the math: a weighted mean decomposes into partial sums,
//   mean = (Σ_shards Σ_{k∈shard} w_k x_k) / (Σ_shards Σ_{k∈shard} w_k),
// so shards can be summed by different workers and combined by one. Pure functions, no I/O.
import { FlotillaError, decodeFloat32Tensors, encodeFloat32Tensors, f32At, f64At } from '@flotilla/protocol';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import { StreamingFedAvg } from '../strategies/streaming-fedavg.js';

/** One decoded delta (tensor name -> shape and f32 values) and its FedAvg weight. */
export interface WeightedDelta {
  delta: TensorMap;
  /** Non-negative, finite (examples, or 1 under DP's uniform weighting). */
  weight: number;
}

/** Σ w_k x_k per tensor in float64, with Σ w_k and the number of updates folded in. */
export interface ShardSum {
  sums: Map<string, { shape: number[]; values: Float64Array }>;
  totalWeight: number;
  count: number;
}

const HI = 'hi/';
const LO = 'lo/';

/**
 * Folds `updates` into one shard sum; every delta must have the same tensor names and shapes.
 * Tensors named in `zeros` are zero in every delta (frozen ones, which loadUpdates refuses
 * otherwise): their sum stays +0 without adding, as adding w · 0 to +0 would leave it.
 */
export function sumShard(
  updates: readonly WeightedDelta[],
  options: { zeros?: ReadonlySet<string> } = {},
): ShardSum {
  const first = updates[0]?.delta ?? new Map<string, never>();
  const layout = [...first].map(([name, tensor]) => ({
    name,
    shape: [...tensor.shape],
    length: tensor.values.length,
  }));
  let totalWeight = 0;
  for (const { delta, weight } of updates) {
    if (!Number.isFinite(weight) || weight < 0)
      throw new FlotillaError('BAD_REQUEST', `weight must be finite and >= 0, got ${weight}`);
    if (delta.size !== layout.length)
      throw new FlotillaError('SHAPE_MISMATCH', `delta has ${delta.size} tensors, expected ${layout.length}`);
    for (const { name, length } of layout)
      if (delta.get(name)?.values.length !== length)
        throw new FlotillaError('SHAPE_MISMATCH', `${name} is missing from a delta or has another size`);
    totalWeight += weight;
  }
  const sums: ShardSum['sums'] = new Map();
  for (const { name, shape, length } of layout) {
    if (options.zeros?.has(name)) {
      sums.set(name, { shape, values: new Float64Array(length) });
      continue;
    }
    // The FedAvg fold (its SIMD kernel when there is one): each coordinate adds w·x update by
    // update in order, in float64, as a plain loop would, bit for bit. It leaves out terms of
    // weight 0, which add +0 or −0 to a sum that is never −0 (it starts at +0): no change.
    const fold = new StreamingFedAvg({ length });
    try {
      fold.addAll(
        updates.map(({ delta, weight }) => ({
          values: delta.get(name)?.values ?? new Float32Array(length),
          weight,
        })),
      );
      sums.set(name, { shape, values: fold.sums() });
    } finally {
      fold.release();
    }
  }
  return { sums, totalWeight, count: updates.length };
}

/** True when every value of the sum is finite: a delta holding NaN or ±Inf makes its sum so. */
export function sumIsFinite(sum: ShardSum): boolean {
  for (const { values } of sum.sums.values()) for (const v of values) if (!Number.isFinite(v)) return false;
  return true;
}

/**
 * A shard sum as a safetensors blob. float64 sums are kept to ~48 bits as two f32 tensors per
 * name, `hi/<name>` = f32(s) and `lo/<name>` = f32(s − hi), so combining shards loses no more
 * than a single-stage float64 fold would; Σw and the count travel in the metadata.
 */
export function encodeShardSum(sum: ShardSum, metadata: Record<string, string> = {}): Uint8Array {
  const tensors = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const [name, { shape, values }] of sum.sums) {
    const hi = Float32Array.from(values);
    const lo = new Float32Array(values.length);
    for (let i = 0; i < values.length; i++) lo[i] = f64At(values, i) - f32At(hi, i);
    tensors.set(`${HI}${name}`, { shape, values: hi });
    tensors.set(`${LO}${name}`, { shape, values: lo });
  }
  return encodeFloat32Tensors(
    tensors,
    { ...metadata, 'flotilla.totalWeight': String(sum.totalWeight), 'flotilla.count': String(sum.count) },
    'F32',
  );
}

export function decodeShardSum(bytes: Uint8Array): ShardSum {
  const { tensors, metadata } = decodeFloat32Tensors(bytes);
  const totalWeight = Number(metadata['flotilla.totalWeight']);
  const count = Number(metadata['flotilla.count']);
  if (!Number.isFinite(totalWeight) || !Number.isInteger(count))
    throw new FlotillaError('CORRUPT_FILE', 'shard sum lacks flotilla.totalWeight or flotilla.count');
  const sums: ShardSum['sums'] = new Map();
  for (const [key, hi] of tensors) {
    if (!key.startsWith(HI)) continue;
    const name = key.slice(HI.length);
    const lo = tensors.get(`${LO}${name}`);
    if (lo?.values.length !== hi.values.length)
      throw new FlotillaError('CORRUPT_FILE', `shard sum lacks ${LO}${name}`);
    const values = new Float64Array(hi.values.length);
    for (let i = 0; i < values.length; i++) values[i] = f32At(hi.values, i) + f32At(lo.values, i);
    sums.set(name, { shape: [...hi.shape], values });
  }
  return { sums, totalWeight, count };
}

/** Σ over shards of their sums, still in float64 (what the audit's leave-one-out means start from). */
export function addShardSums(shards: readonly ShardSum[]): ShardSum {
  const first = shards.find((s) => s.count > 0);
  if (!first) throw new FlotillaError('BAD_REQUEST', 'no updates in any shard');
  const sums: ShardSum['sums'] = new Map();
  for (const [name, { shape, values }] of first.sums)
    sums.set(name, { shape, values: new Float64Array(values.length) });
  let totalWeight = 0;
  let count = 0;
  for (const shard of shards) {
    if (shard.count === 0) continue;
    for (const [name, target] of sums) {
      const part = shard.sums.get(name);
      if (part?.values.length !== target.values.length)
        throw new FlotillaError('SHAPE_MISMATCH', `shard lacks ${name} or has another shape`);
      for (let i = 0; i < part.values.length; i++)
        target.values[i] = f64At(target.values, i) + f64At(part.values, i);
    }
    totalWeight += shard.totalWeight;
    count += shard.count;
  }
  return { sums, totalWeight, count };
}

/** The weighted mean of every update of every shard, rounded once to f32. */
export function combineShardSums(shards: readonly ShardSum[]): {
  mean: TensorMap;
  totalWeight: number;
  count: number;
} {
  const { sums, totalWeight, count } = addShardSums(shards);
  if (!(totalWeight > 0)) throw new FlotillaError('BAD_REQUEST', 'weighted mean of zero total weight');
  const mean: TensorMap = new Map();
  for (const [name, { shape, values }] of sums) {
    // A plain loop: `Float32Array.from` with a map function boxes every value on its way through.
    const out = new Float32Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = f64At(values, i) / totalWeight;
    mean.set(name, { shape, values: out });
  }
  return { mean, totalWeight, count };
}

/**
 * The two-stage mean of `deltas` (in aggregation order) summed in consecutive shards of
 * `counts[i]` updates, through the same blob encoding the shard jobs use: bit for bit what a
 * hierarchical round computed, for an auditor re-running it from the round log.
 */
export function hierarchicalMean(deltas: readonly WeightedDelta[], counts: readonly number[]): TensorMap {
  if (counts.reduce((a, b) => a + b, 0) !== deltas.length)
    throw new FlotillaError(
      'BAD_REQUEST',
      `shard counts cover ${counts.join('+')} updates, not ${deltas.length}`,
    );
  const shards: ShardSum[] = [];
  let start = 0;
  for (const count of counts) {
    if (count > 0) shards.push(decodeShardSum(encodeShardSum(sumShard(deltas.slice(start, start + count)))));
    start += count;
  }
  return combineShardSums(shards).mean;
}
