import { FlotillaError } from '@flotilla/protocol';
import type { SeededRng } from '../model/seeded-rng.js';
import { shuffledIndices } from '../model/seeded-rng.js';
import type { LocalDataset } from '../training/dataset.js';
import { concatDatasets, datasetSize, selectExamples } from '../training/dataset.js';

/** Replayed examples and how many of them to mix in. */
export interface ReplayMix {
  /** Past examples (e.g. from `ReplayBuffer.sample`). */
  examples: LocalDataset;
  /**
   * Replayed examples added per fresh example (0.25 adds a quarter as many replayed as fresh),
   * capped by what `examples` holds. Must be ≥ 0.
   */
  ratio: number;
}

/**
 * The fresh examples plus ⌊ratio·n_fresh⌋ replayed ones drawn without replacement by `rng`.
 * Training shuffles the result, so the replayed examples are spread over the batches.
 */
export function mixReplay(options: ReplayMix & { fresh: LocalDataset; rng: SeededRng }): LocalDataset {
  const { fresh, examples, ratio, rng } = options;
  if (!(ratio >= 0) || !Number.isFinite(ratio))
    throw new FlotillaError('BAD_REQUEST', `replay ratio ${ratio} must be ≥ 0`);
  const available = datasetSize(examples);
  const wanted = Math.min(available, Math.floor(ratio * datasetSize(fresh)));
  if (wanted === 0) return fresh;
  const chosen = shuffledIndices(available, rng).subarray(0, wanted);
  return concatDatasets(fresh, selectExamples(examples, chosen));
}
