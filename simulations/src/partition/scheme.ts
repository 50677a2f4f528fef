import { FlotillaError } from '@flotilla/protocol';
import type { Rng } from '../rng/random.js';
import {
  partitionDirichlet,
  partitionIid,
  partitionQuantitySkew,
  partitionShards,
  type Partition,
} from './partition.js';

export type PartitionScheme = 'iid' | 'dirichlet' | 'shards' | 'quantity-skew';

/** Options for {@link partitionExamples}: the scheme plus its parameters. */
export interface PartitionOptions {
  scheme: PartitionScheme;
  labels: ArrayLike<number>;
  numDevices: number;
  rng: Rng;
  /** Dirichlet concentration α (required for 'dirichlet'). */
  alpha?: number;
  /** Shards per device k (required for 'shards'). */
  shardsPerDevice?: number;
  /** Lognormal σ of 'quantity-skew'. Default 1. */
  sigma?: number;
  /** Fewest examples per device ('dirichlet', 'quantity-skew'). Default 1. */
  minPerDevice?: number;
}

/** Dispatches to the partitioner of `scheme`. */
export function partitionExamples(options: PartitionOptions): Partition {
  const { labels, numDevices, rng } = options;
  switch (options.scheme) {
    case 'iid':
      return partitionIid({ labels, numDevices, rng });
    case 'dirichlet':
      if (options.alpha === undefined)
        throw new FlotillaError('BAD_REQUEST', 'partition.alpha is required for dirichlet');
      return partitionDirichlet({
        labels,
        numDevices,
        rng,
        alpha: options.alpha,
        minPerDevice: options.minPerDevice,
      });
    case 'shards':
      if (options.shardsPerDevice === undefined) {
        throw new FlotillaError('BAD_REQUEST', 'partition.shardsPerDevice is required for shards');
      }
      return partitionShards({ labels, numDevices, rng, shardsPerDevice: options.shardsPerDevice });
    case 'quantity-skew':
      return partitionQuantitySkew({
        labels,
        numDevices,
        rng,
        sigma: options.sigma,
        minPerDevice: options.minPerDevice,
      });
    default:
      throw new FlotillaError('BAD_REQUEST', `unknown partition scheme ${String(options.scheme)}`);
  }
}

/** Keeps at most `max` examples per device (the first ones, which are already in random order). */
export function capPartition(partition: Partition, max: number): Partition {
  return partition.map((indices) => indices.slice(0, max));
}
