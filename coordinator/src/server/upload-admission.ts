import type { TaskRegistry } from '../shared/task-registry.js';
import type { UploadAdmission } from './blob-routes.js';

export interface UploadAdmissionDeps {
  tasks: TaskRegistry;
  /** Global cap on device uploads, bytes; per-task policy caps apply below it. */
  maxDeviceBlobBytes: number;
}

/** A device's upload may be as large as the largest task cap, within the global cap. */
export function createUploadAdmission(deps: UploadAdmissionDeps) {
  return async (): Promise<UploadAdmission> => {
    const tasks = await deps.tasks.listTasks();
    const perTask = tasks.map((t) => t.task.policy.maxBlobBytes);
    const maxBytes = Math.min(
      deps.maxDeviceBlobBytes,
      perTask.length > 0 ? Math.max(...perTask) : deps.maxDeviceBlobBytes,
    );
    return { maxBytes, release: () => Promise.resolve() };
  };
}
