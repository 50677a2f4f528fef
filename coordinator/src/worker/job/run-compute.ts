import { createCryptoRng, createSeededRng } from '../privacy/index.js';
import { computeRound, type ComputeRoundInput, type ComputeRoundResult } from './compute-round.js';
import type { AggregateJobDeps } from './round-context.js';

/** The round's math, in a worker thread when the deps provide one. */
export function runCompute(
  deps: AggregateJobDeps,
  roundId: string,
  input: Omit<ComputeRoundInput, 'rng'>,
): Promise<ComputeRoundResult> | ComputeRoundResult {
  const seed = deps.noiseSeed !== undefined ? `${deps.noiseSeed}:${roundId}` : null;
  return deps.compute
    ? deps.compute(input, seed)
    : computeRound({ ...input, rng: seed === null ? createCryptoRng() : createSeededRng(seed) });
}
