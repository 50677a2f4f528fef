import { FlotillaError } from '@flotilla/protocol';
import type { Rng } from '../rng/random.js';

/**
 * Device -> example indices. `partition[d]` lists the dataset rows device d holds. Every scheme
 * assigns each example to at most one device; IID, Dirichlet and quantity skew assign every
 * example, shards may leave a remainder (see {@link partitionShards}).
 */
export type Partition = number[][];

/** Options shared by every scheme. */
export interface PartitionBaseOptions {
  /** Label of each example (row order of the dataset). */
  labels: ArrayLike<number>;
  numDevices: number;
  rng: Rng;
}

function checkDevices(n: number, numDevices: number, minPerDevice: number): void {
  if (!Number.isInteger(numDevices) || numDevices < 1) {
    throw new FlotillaError('BAD_REQUEST', `numDevices must be a positive integer, got ${numDevices}`);
  }
  if (n < numDevices * minPerDevice) {
    throw new FlotillaError(
      'BAD_REQUEST',
      `${n} examples cannot give ${numDevices} devices at least ${minPerDevice} each`,
    );
  }
}

/** The example indices of each class, in row order, by label. */
function examplesByClass(labels: ArrayLike<number>): Map<number, number[]> {
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i += 1) {
    const label = labels[i] ?? 0;
    const list = byClass.get(label) ?? [];
    list.push(i);
    byClass.set(label, list);
  }
  return byClass;
}

/** Splits `order` into consecutive chunks of the given sizes. */
function cut(order: readonly number[], sizes: readonly number[]): Partition {
  const out: Partition = [];
  let start = 0;
  for (const size of sizes) {
    out.push(order.slice(start, start + size));
    start += size;
  }
  return out;
}

/**
 * Integer sizes summing to `total`, proportional to `weights`, with at least `floor` each
 * (largest-remainder rounding; ties go to the lower index, so the result is deterministic).
 */
export function proportionalSizes(weights: readonly number[], total: number, floor = 0): number[] {
  const free = total - floor * weights.length;
  const sum = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (sum > 0 ? (free * w) / sum : free / weights.length));
  const sizes = exact.map((x) => Math.floor(x));
  let left = free - sizes.reduce((a, b) => a + b, 0);
  const byRemainder = exact
    .map((x, index) => ({ index, remainder: x - Math.floor(x) }))
    .sort((a, b) => b.remainder - a.remainder || a.index - b.index);
  for (const { index } of byRemainder) {
    if (left <= 0) break;
    sizes[index] = (sizes[index] ?? 0) + 1;
    left -= 1;
  }
  return sizes.map((size) => size + floor);
}

/** IID: a uniformly random permutation cut into sizes that differ by at most one. */
export function partitionIid(options: PartitionBaseOptions): Partition {
  const n = options.labels.length;
  checkDevices(n, options.numDevices, 1);
  const sizes = proportionalSizes(new Array<number>(options.numDevices).fill(1), n);
  return cut(options.rng.permutation(n), sizes);
}

/** Options for {@link partitionDirichlet}. */
export interface DirichletOptions extends PartitionBaseOptions {
  /** Concentration α > 0; small α (0.1) gives devices few dominant labels, large α is near IID. */
  alpha: number;
  /** Fewest examples a device may get; the whole draw is repeated until it holds. Default 1. */
  minPerDevice?: number;
  /** Redraws allowed before giving up with BAD_REQUEST. Default 1000. */
  maxAttempts?: number;
}

/**
 * Label skew after Hsu, Qi & Brown (2019), "Measuring the effects of non-identical data
 * distribution": for each class c draw p_c ~ Dir(α·1) over devices and give device d a share
 * p_c[d] of class c's (shuffled) examples. With small α some devices can end up empty; as in
 * common implementations (e.g. NIID-Bench) the draw is repeated until every device has at least
 * `minPerDevice` examples.
 */
export function partitionDirichlet(options: DirichletOptions): Partition {
  const { labels, numDevices, rng, alpha } = options;
  const minPerDevice = options.minPerDevice ?? 1;
  const maxAttempts = options.maxAttempts ?? 1000;
  if (!(alpha > 0)) throw new FlotillaError('BAD_REQUEST', `dirichlet alpha must be > 0, got ${alpha}`);
  checkDevices(labels.length, numDevices, minPerDevice);
  const byClass = examplesByClass(labels);
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const concentration = new Array<number>(numDevices).fill(alpha);
  for (let attempt = 0; attempt < maxAttempts; attempt += 1) {
    const partition: Partition = Array.from({ length: numDevices }, () => []);
    for (const label of classes) {
      const members = rng.shuffle([...(byClass.get(label) ?? [])]);
      const shares = proportionalSizes(rng.dirichlet(concentration), members.length);
      cut(members, shares).forEach((chunk, device) => partition[device]?.push(...chunk));
    }
    // Shuffle within devices so a device's list is not grouped by class (capping takes a prefix).
    if (partition.every((examples) => examples.length >= minPerDevice))
      return partition.map((list) => rng.shuffle(list));
  }
  throw new FlotillaError(
    'BAD_REQUEST',
    `dirichlet(α=${alpha}) gave a device fewer than ${minPerDevice} examples in ${maxAttempts} draws; raise α or lower minPerDevice`,
  );
}

/** Options for {@link partitionShards}. */
export interface ShardOptions extends PartitionBaseOptions {
  /** Shards (hence distinct classes) per device, k. */
  shardsPerDevice: number;
}

/**
 * Pathological non-IID after McMahan et al. (2017), "Communication-Efficient Learning of Deep
 * Networks from Decentralized Data": sort by label, cut into numDevices·k shards, give each device
 * k shards. The original cuts the sorted list into equal shards, so a shard can straddle two
 * labels; here shards are cut *within* each class (shards per class proportional to its size) and
 * dealt so that no device gets two shards of one class. Every device therefore holds exactly k
 * classes. Needs k <= numClasses; with numDevices·k < numClasses some classes get no shard; examples left over by rounding a class into equal shards are not
 * assigned (each class loses fewer examples than it has shards).
 */
export function partitionShards(options: ShardOptions): Partition {
  const { labels, numDevices, rng, shardsPerDevice: k } = options;
  checkDevices(labels.length, numDevices, 1);
  const byClass = examplesByClass(labels);
  const classes = rng.shuffle([...byClass.keys()].sort((a, b) => a - b));
  if (!Number.isInteger(k) || k < 1 || k > classes.length) {
    throw new FlotillaError(
      'BAD_REQUEST',
      `shardsPerDevice must be an integer in [1, ${classes.length}], got ${k}`,
    );
  }
  const totalShards = numDevices * k;
  // Shards per class proportional to class size, capped at numDevices so that dealing in order
  // never gives one device two shards of one class; surplus goes to classes below the cap.
  const counts = proportionalSizes(
    classes.map((c) => byClass.get(c)?.length ?? 0),
    totalShards,
  );
  const classSizes = classes.map((c) => byClass.get(c)?.length ?? 0);
  let surplus = 0;
  counts.forEach((count, index) => {
    if (count > numDevices) {
      surplus += count - numDevices;
      counts[index] = numDevices;
    }
  });
  // k <= numClasses, so the classes below the cap can always absorb the surplus.
  for (; surplus > 0; surplus -= 1) {
    let best = -1;
    counts.forEach((count, index) => {
      if (count >= numDevices) return;
      const room = (classSizes[index] ?? 0) / (count + 1);
      const bestRoom = best < 0 ? -1 : (classSizes[best] ?? 0) / ((counts[best] ?? 0) + 1);
      if (room > bestRoom) best = index;
    });
    counts[best] = (counts[best] ?? 0) + 1;
  }
  const shards: number[][] = [];
  classes.forEach((label, position) => {
    const members = rng.shuffle([...(byClass.get(label) ?? [])]);
    const count = counts[position] ?? 0;
    const size = Math.floor(members.length / Math.max(1, count));
    if (count > 0 && size === 0) {
      throw new FlotillaError('BAD_REQUEST', `class ${label} has too few examples for ${count} shards`);
    }
    for (let s = 0; s < count; s += 1) shards.push(members.slice(s * size, (s + 1) * size));
  });
  const deviceOrder = rng.permutation(numDevices);
  const partition: Partition = Array.from({ length: numDevices }, () => []);
  shards.forEach((shard, index) => {
    partition[deviceOrder[index % numDevices] ?? 0]?.push(...shard);
  });
  return partition.map((list) => rng.shuffle(list));
}

/** Options for {@link partitionQuantitySkew}. */
export interface QuantitySkewOptions extends PartitionBaseOptions {
  /** σ of the lognormal LN(0, σ²) device-size weights; 0 is equal sizes. Default 1. */
  sigma?: number;
  /** Fewest examples per device. Default 1. */
  minPerDevice?: number;
}

/**
 * Quantity skew: device sizes proportional to lognormal weights (labels stay IID), as in the
 * "unbalanced" setting of Li et al. (2022), "Federated Learning on Non-IID Data Silos".
 */
export function partitionQuantitySkew(options: QuantitySkewOptions): Partition {
  const n = options.labels.length;
  const sigma = options.sigma ?? 1;
  const minPerDevice = options.minPerDevice ?? 1;
  if (!(sigma >= 0)) throw new FlotillaError('BAD_REQUEST', `sigma must be >= 0, got ${sigma}`);
  checkDevices(n, options.numDevices, minPerDevice);
  const weights = Array.from({ length: options.numDevices }, () => Math.exp(options.rng.normal(0, sigma)));
  return cut(options.rng.permutation(n), proportionalSizes(weights, n, minPerDevice));
}
