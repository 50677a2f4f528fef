import type { AdapterRegistry } from '../../shared/adapter-registry.js';
import type { TaskRegistry } from '../../shared/task-registry.js';

/**
 * Server-holdout accuracy of each task's live adapter version, as its signed manifest records it
 * (`metrics.holdoutAccuracy`, written by a worker that evaluates candidates on a holdout). Tasks
 * without a promoted version or without a holdout are left out.
 */
export async function liveHoldoutAccuracy(
  tasks: TaskRegistry,
  adapters: AdapterRegistry,
): Promise<ReadonlyMap<string, number>> {
  const accuracy = new Map<string, number>();
  for (const signed of await tasks.listTasks()) {
    const taskId = signed.task.taskId;
    const version = await adapters.latestVersion(taskId);
    if (version === 0) continue;
    const value = (await adapters.getManifest(taskId, version))?.manifest.metrics.holdoutAccuracy;
    if (value !== undefined) accuracy.set(taskId, value);
  }
  return accuracy;
}
