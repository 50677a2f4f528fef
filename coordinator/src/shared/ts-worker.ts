import { Worker, type WorkerOptions } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

const BOOT = fileURLToPath(new URL('./ts-worker-boot.mjs', import.meta.url));

/**
 * The package export condition that maps `@flotilla/*` imports to their TypeScript sources
 * (`src/*.ts`) inside the monorepo; published consumers resolve `import` to the built `dist/*.js`.
 * Vitest, the `flotilla` bin and the test/bench child processes turn it on.
 */
export const SOURCE_CONDITION = '@flotilla/source';

/**
 * The module `name` (without extension) in the directory of `baseUrl`, with the extension the
 * caller itself has: `.ts` when running from the sources (tsx, vitest), `.js` when running from a
 * built package. Worker thread entries are found this way, so both layouts work.
 */
export function siblingModule(name: string, baseUrl: string): URL {
  const extension = new URL(baseUrl).pathname.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${name}${extension}`, baseUrl);
}

/** Flags a Worker refuses in its execArgv although its parent process may run with them. */
const PROCESS_ONLY_FLAGS = new Set(['--expose-gc', '--expose_gc']);

/**
 * Starts a worker thread running a module of this project. `entry` is the module's URL or
 * absolute path; `data` is passed as `workerData.data` (structured-cloned). A `.ts` entry is
 * loaded through tsx with {@link SOURCE_CONDITION} on (development in the monorepo); a `.js` entry
 * (a built package) is imported as it is.
 */
export function startTsWorker(
  entry: URL | string,
  data: unknown,
  options: Omit<WorkerOptions, 'workerData'> = {},
): Worker {
  const path = entry instanceof URL ? fileURLToPath(entry) : entry;
  const conditionFlag = `--conditions=${SOURCE_CONDITION}`;
  // A Worker refuses per-process V8 flags in its execArgv (`--expose-gc`, which the bench's
  // processes take, ends the start with ERR_WORKER_INVALID_EXEC_ARGV); the thread needs none of them.
  const inherited = (options.execArgv ?? process.execArgv).filter((flag) => !PROCESS_ONLY_FLAGS.has(flag));
  const execArgv =
    path.endsWith('.ts') && !inherited.includes(conditionFlag) ? [...inherited, conditionFlag] : inherited;
  return new Worker(BOOT, { ...options, execArgv, workerData: { entry: path, data } });
}
