// Worker-thread entry of a device host (device-host.ts). Before the host's modules load, source
// maps are turned off for this thread: under tsx, Node would otherwise parse and keep the map of
// every module it loads (tfjs's bundle alone has a 17 MB map, about 30 MB of heap per thread once
// parsed), and a host's errors leave the thread as messages, never as stack traces, so the maps
// would never be read. The main thread keeps its own setting. tfjs is then loaded through
// `require` (preload-tfjs.ts), which keeps no second copy of its sources (about 10 MB).
import { preloadTfjs } from './preload-tfjs.js';

process.setSourceMapsEnabled(false);
preloadTfjs();
await import('./device-host.js');
