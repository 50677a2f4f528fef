import {
  FlotillaError,
  SIGNING_DOMAINS,
  TaskDefinitionSchema,
  verifyPayload,
  type TaskDefinition,
} from '@flotilla/protocol';
import { z } from 'zod';
import type { DeviceArtifacts } from './artifacts.js';
import type { CoordinatorHttp } from './http-client.js';
import type { DeviceLogger } from './logger.js';
import type { Trainer } from './trainer.js';

export interface PreflightInput {
  taskId: string;
  http: CoordinatorHttp;
  /** The pinned coordinator key (pinned by the handshake that just succeeded). */
  coordinatorKey: string | null;
  artifacts: DeviceArtifacts;
  trainer: Trainer;
  logger: DeviceLogger;
}

// The signed task as served by `GET /api/tasks/:taskId`; `task` stays raw until its signature is
// checked over exactly the bytes the coordinator signed.
const ServedTaskSchema = z.object({ task: z.unknown(), coordinatorKey: z.string(), signature: z.string() });

/**
 * What `FlotillaDevice.start()` checks before its first check-in, so that a device that cannot
 * take part fails at once with a reason instead of in every round: the task exists and is signed
 * by the pinned coordinator key, its base model downloads and verifies (and stays cached for the
 * first round), and the trainer's `prepare` accepts it (the `TfjsTrainer` checks the local data's
 * `featureShape` and labels against the model). Runs only for trainers that have `prepare`.
 */
export async function preflightTask(input: PreflightInput): Promise<TaskDefinition> {
  const task = await fetchVerifiedTask(input.http, input.taskId, input.coordinatorKey);
  const baseModel = await input.artifacts.baseModel(task.baseModel.digest);
  await input.trainer.prepare?.({ task, baseModel, logger: input.logger });
  input.logger.info(
    { taskId: input.taskId, baseModelDigest: task.baseModel.digest },
    'task checked; local data fits its model',
  );
  return task;
}

/** The task as the coordinator serves it, its signature checked against the pinned key. */
export async function fetchVerifiedTask(
  http: Pick<CoordinatorHttp, 'fetchTask'>,
  taskId: string,
  coordinatorKey: string | null,
): Promise<TaskDefinition> {
  let raw: unknown;
  try {
    raw = await http.fetchTask(taskId);
  } catch (error) {
    if (FlotillaError.is(error, 'NOT_FOUND'))
      throw new FlotillaError('NOT_FOUND', `task "${taskId}" is not registered on this coordinator`);
    throw error;
  }
  const served = ServedTaskSchema.safeParse(raw);
  if (!served.success) throw new FlotillaError('BAD_REQUEST', `malformed task document for "${taskId}"`);
  const { task: signedTask, signature } = served.data;
  if (coordinatorKey === null || served.data.coordinatorKey !== coordinatorKey)
    throw new FlotillaError(
      'BAD_SIGNATURE',
      'the task is signed by a key other than the pinned coordinator key',
    );
  if (!verifyPayload(SIGNING_DOMAINS.task, signedTask, signature, coordinatorKey))
    throw new FlotillaError('BAD_SIGNATURE', `task "${taskId}" has an invalid signature`);
  const parsed = TaskDefinitionSchema.safeParse(signedTask);
  if (!parsed.success || parsed.data.taskId !== taskId)
    throw new FlotillaError('BAD_REQUEST', `the coordinator's task document for "${taskId}" is not valid`);
  return parsed.data;
}
