// Weighted FedAvg (McMahan et al. 2017): the example-weighted mean of the deltas.
import { checkUpdates } from './checks.js';
import { KernelArena } from './kernel-arena.js';
import { StreamingFedAvg } from './streaming-fedavg.js';
import type { AggregationResult, WeightedUpdate } from './types.js';

/** Weighted mean of all updates (weights = example counts); see `StreamingFedAvg` for the kernel. */
export function aggregateFedAvg(updates: readonly WeightedUpdate[]): AggregationResult {
  const length = checkUpdates(updates);
  // Updates the worker flattened into a kernel arena are read in place (see kernel-arena.ts).
  const arena = KernelArena.of(updates[0]?.values ?? new Float32Array(0)) ?? undefined;
  const mean = new StreamingFedAvg({ length, ...(arena ? { arena } : {}) });
  try {
    mean.addAll(updates);
    return {
      values: mean.result(),
      selected: updates.map((_, index) => index),
      details: {
        totalWeight: mean.totalWeight,
        kernel: mean.usesSimd ? 'wasm-simd' : 'scalar',
        readInPlace: mean.inPlaceCount,
      },
    };
  } finally {
    mean.release();
  }
}
