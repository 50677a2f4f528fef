// Loads tfjs before the simulation's ES modules import it, in the way that keeps least of it in
// memory (docs/benchmarks.md, simulation memory). Imported from ES modules under a loader hook
// (tsx, which runs Flotilla from its sources), Node 20 keeps two things per CommonJS module for
// the life of the thread: a second copy of its source (about 10 MB for tfjs's bundles) and, with
// source maps on (tsx turns them on), its parsed source map (about 19 MB for tfjs's). Required,
// a module keeps neither the copy nor, with source maps off while it loads, the map; the
// `import`s that follow get the same, already loaded modules. Only tfjs's own stack frames lose
// their mapping to tfjs's TypeScript sources; Flotilla's keep theirs.
import { createRequire } from 'node:module';

/** The tfjs packages the client imports (resolved from the client, which depends on them). */
const TFJS_PACKAGES = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm'] as const;

/**
 * Requires tfjs with source maps off, then restores the thread's setting. Call it before the
 * module that imports the runner (or the client) is imported; later calls do nothing more.
 */
export function preloadTfjs(): void {
  const require = createRequire(import.meta.resolve('@flotilla/client'));
  const maps = process.sourceMapsEnabled;
  process.setSourceMapsEnabled(false);
  try {
    for (const name of TFJS_PACKAGES) require(name);
  } finally {
    process.setSourceMapsEnabled(maps);
  }
}
