/**
 * Comparator networks that sort n values (Batcher 1968, "Sorting networks and their applications":
 * odd-even merge sort). A comparator (i, j), i < j, puts the smaller value on wire i. For n that is
 * not a power of two the network is the next power of two's with every comparator that touches a
 * wire ≥ n left out, which is the same as padding with +∞ (those comparators would never swap).
 * n = 100 takes 1,104 comparators; pruned to the two middle outputs (the median), 898.
 */

/**
 * Comparator list of Batcher's odd-even merge sort for `n` wires, in depth-first order: the first
 * half is sorted completely, then the second, then they are merged (recursively, the same for the
 * merge's halves). Consecutive comparators then touch few distinct wires, which is what lets the
 * kernel keep most of them in registers (network-kernel.ts).
 */
export function oddEvenMergeSort(n: number): [number, number][] {
  let size = 1;
  while (size < n) size *= 2;
  const comparators: [number, number][] = [];
  const compare = (i: number, j: number): void => {
    if (j < n) comparators.push([i, j]);
  };
  // Merges the sorted halves of [lo, lo + length) looking at every r-th wire (Batcher's odd-even merge).
  const merge = (lo: number, length: number, r: number): void => {
    const step = 2 * r;
    if (step < length) {
      merge(lo, length, step);
      merge(lo + r, length, step);
      for (let i = lo + r; i + r < lo + length; i += step) compare(i, i + r);
    } else {
      compare(lo, lo + r);
    }
  };
  const sort = (lo: number, length: number): void => {
    if (length < 2) return;
    const half = length / 2;
    sort(lo, half);
    sort(lo + half, half);
    merge(lo, length, 1);
  };
  sort(0, size);
  return comparators;
}

/**
 * The comparators of `network` that can influence the wires in `outputs` (walking backwards: a
 * comparator is kept when one of its wires is read later, and then both of its inputs are). The
 * kept ones, in the same order, leave those outputs exactly as the whole network does.
 */
export function pruneNetwork(
  network: readonly (readonly [number, number])[],
  outputs: Iterable<number>,
): [number, number][] {
  const live = new Set(outputs);
  const kept: [number, number][] = [];
  for (let t = network.length - 1; t >= 0; t--) {
    const comparator = network[t];
    if (comparator === undefined) continue;
    const [i, j] = comparator;
    if (live.has(i) || live.has(j)) {
      kept.push([i, j]);
      live.add(i);
      live.add(j);
    }
  }
  return kept.reverse();
}

const cache = new Map<string, [number, number][]>();

/**
 * The odd-even merge sort network for `n` wires pruned to the sorted positions [from, to), cached
 * (a network is built once per update count and output range in a process).
 */
export function selectionNetwork(n: number, from: number, to: number): readonly [number, number][] {
  const key = `${n}:${from}:${to}`;
  let network = cache.get(key);
  if (network === undefined) {
    const positions = Array.from({ length: Math.max(0, to - from) }, (_, k) => from + k);
    network = pruneNetwork(oddEvenMergeSort(n), positions);
    if (cache.size >= 64) cache.clear();
    cache.set(key, network);
  }
  return network;
}
