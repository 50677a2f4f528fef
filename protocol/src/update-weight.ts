import type { TaskDefinition, UpdateWeighting } from './messages/task.js';

// One update's influence on an aggregate is bounded (DESIGN.md, trust rules): its norm by the
// clip bound, its weight by the task's weighting policy applied to the examples it claims.

/**
 * The default `policy.maxExamplesPerUpdate`: `maxSteps × batchSize`, in examples. A device
 * trains at most `maxSteps` optimizer steps of at most `batchSize` examples each, so no honest
 * update rests on more examples than this.
 */
export function defaultMaxExamplesPerUpdate(
  rounds: Pick<TaskDefinition['rounds'], 'maxSteps' | 'training'>,
): number {
  return rounds.maxSteps * rounds.training.batchSize;
}

/** The task's `maxExamplesPerUpdate`, or its default when the task predates the field. */
export function maxExamplesPerUpdate(task: {
  policy: Pick<TaskDefinition['policy'], 'maxExamplesPerUpdate'>;
  rounds: Pick<TaskDefinition['rounds'], 'maxSteps' | 'training'>;
}): number {
  return task.policy.maxExamplesPerUpdate ?? defaultMaxExamplesPerUpdate(task.rounds);
}

/**
 * The weight of an update claiming `numExamples` under `weighting`, before any differential-privacy
 * rule (DP weighs every update 1). Always positive and finite for a positive integer claim.
 */
export function updateWeight(weighting: UpdateWeighting, numExamples: number): number {
  switch (weighting.rule) {
    case 'examples':
      return numExamples;
    case 'equal':
      return 1;
    case 'capped':
      return Math.min(numExamples, weighting.cap);
  }
}

/**
 * The weight the aggregate gives an update: 1 for every update of a DP task (the sensitivity of
 * the average is then C/m), else `updateWeight` under the task's weighting rule.
 */
export function aggregationWeight(
  policy: Pick<TaskDefinition['policy'], 'dp' | 'weighting'>,
  numExamples: number,
): number {
  return policy.dp ? 1 : updateWeight(policy.weighting, numExamples);
}
