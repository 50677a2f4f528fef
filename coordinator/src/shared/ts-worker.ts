import { Worker, type WorkerOptions } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

const BOOT = fileURLToPath(new URL('./ts-worker-boot.mjs', import.meta.url));

/**
 * Starts a worker thread running a TypeScript module. `entry` is the module's URL or absolute
 * path; `data` is passed as `workerData.data` (structured-cloned).
 */
export function startTsWorker(
  entry: URL | string,
  data: unknown,
  options: Omit<WorkerOptions, 'workerData'> = {},
): Worker {
  const path = entry instanceof URL ? fileURLToPath(entry) : entry;
  return new Worker(BOOT, { ...options, workerData: { entry: path, data } });
}
