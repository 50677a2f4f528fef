// Worker-thread entry of a device host (device-host.ts). Two things are done before the host's
// modules load, both for memory (docs/benchmarks.md, simulation memory):
// - Source maps are turned off for this thread: under tsx, Node would otherwise parse and keep the
//   map of every module it loads (tfjs's bundle alone has a 17 MB map, about 30 MB of heap per
//   thread once parsed), and a host's errors leave the thread as messages, never as stack traces,
//   so the maps would never be read. The main thread keeps its own setting.
// - tfjs (CommonJS) is loaded through `require` first. Imported from ES modules under a loader
//   hook (tsx), Node 20 keeps a second copy of each CommonJS module's source for the life of the
//   thread (about 10 MB for tfjs's bundles); required, it keeps only the compiled code's. The
//   host's `import`s then get the same, already loaded modules (resolved from the client, which
//   depends on them).
import { createRequire } from 'node:module';

process.setSourceMapsEnabled(false);
const require = createRequire(import.meta.resolve('@flotilla/client'));
require('@tensorflow/tfjs');
require('@tensorflow/tfjs-backend-wasm');
await import('./device-host.js');
