// Entry of every Flotilla worker thread: loads the TypeScript module named in workerData.entry
// through tsx, so worker threads run the same sources under `tsx` (CLI) and vitest (tests).
import { workerData } from 'node:worker_threads';
import { tsImport } from 'tsx/esm/api';

await tsImport(workerData.entry, import.meta.url);
