import type { TaskDefinition } from '@flotilla/protocol';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import { createCryptoRng, createSeededRng } from '../privacy/index.js';
import { computeRound, type ComputeRoundInput, type ComputeRoundResult } from './compute-round.js';
import type { AggregateJobDeps } from './process-aggregate-job.js';

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

/** FFA-LoRA's A is frozen: devices do not send it, and its delta is zero. */
export function frozenTensors(task: TaskDefinition, current: TensorMap): Set<string> {
  return new Set(
    task.adapter.mode === 'ffa-lora' ? [...current.keys()].filter((n) => n.endsWith('.lora_A.weight')) : [],
  );
}
