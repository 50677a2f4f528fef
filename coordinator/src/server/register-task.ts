import {
  DEFAULT_ORDERS,
  FlotillaError,
  TaskDefinitionSchema,
  describeTaskIssues,
  epsilonOfRho,
  safeParseStrict,
  type SignedTask,
  type TaskDefinitionInput,
} from '@flotilla/protocol';
import type { BlobStore } from '../shared/blob-store/index.js';
import { strategyCombinationProblem } from '../shared/strategy-rules.js';
import type { TaskRegistry } from '../shared/task-registry.js';

/**
 * Registers a task the way the coordinator accepts it: every target module has `moduleShapes`
 * and is allowed by the policy, its strategy, LoRA rule, adapter mode and DP policy can work
 * together (strategy-rules.ts), a DP budget pays for at least one round, and the base model blob
 * is in the store with the stated size.
 * Usable without a running coordinator (CLI): a running one opens the first round when it hears
 * of the task.
 */
export async function registerTask(input: {
  tasks: TaskRegistry;
  blobs: BlobStore;
  task: TaskDefinitionInput;
}): Promise<SignedTask> {
  const parsed = safeParseStrict(TaskDefinitionSchema, input.task);
  if (!parsed.success)
    throw new FlotillaError('BAD_REQUEST', `invalid task: ${describeTaskIssues(parsed.error)}`);
  const task = parsed.data;
  for (const module of task.adapter.targetModules) {
    if (!task.moduleShapes?.[module])
      throw new FlotillaError('BAD_REQUEST', `moduleShapes lacks target module ${module}`);
    if (!task.policy.allowedModules.includes(module))
      throw new FlotillaError('BAD_REQUEST', `target module ${module} is not in policy.allowedModules`);
  }
  const combination = strategyCombinationProblem(task);
  if (combination !== null) throw new FlotillaError('BAD_REQUEST', combination);
  const dp = task.policy.dp;
  if (dp) {
    // Every round charges one unamplified Gaussian release (docs/privacy.md): a budget below the
    // cost of one round would stop the task before its first aggregate.
    const perRound = epsilonOfRho({
      rho: 1 / (2 * dp.noiseMultiplier ** 2),
      orders: DEFAULT_ORDERS,
      delta: dp.delta,
      conversion: 'improved',
    }).epsilon;
    if (perRound > dp.epsilonBudget)
      throw new FlotillaError(
        'BAD_REQUEST',
        `policy.dp: one round at noise multiplier ${dp.noiseMultiplier} costs epsilon ${Number(perRound.toPrecision(4))} ` +
          `at delta ${dp.delta}, more than the budget ${dp.epsilonBudget}; raise noiseMultiplier or epsilonBudget`,
      );
  }
  const size = await input.blobs.size(task.baseModel.digest);
  if (size === null)
    throw new FlotillaError('BLOB_MISSING', 'upload the base model with PUT /blobs/:sha256 first');
  if (size !== task.baseModel.bytes)
    throw new FlotillaError('BAD_REQUEST', `base model is ${size} bytes, task says ${task.baseModel.bytes}`);
  return input.tasks.createTask(task);
}
