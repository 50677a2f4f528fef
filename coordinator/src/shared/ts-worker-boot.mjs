// Entry of every Flotilla worker thread: loads the module named in workerData.entry. A TypeScript
// entry (the monorepo's sources, under tsx or vitest) goes through tsx, which is a development
// dependency only; a built package's `.js` entry is imported directly.
import { workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';

if (workerData.entry.endsWith('.ts')) {
  const { tsImport } = await import('tsx/esm/api');
  await tsImport(workerData.entry, import.meta.url);
} else {
  await import(pathToFileURL(workerData.entry).href);
}
