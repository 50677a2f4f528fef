// Browser entry of the device library: everything here runs in a page (no node:* imports).
// Bundle it with esbuild (see simulations/web/build.ts) rather than importing '@flotilla/client',
// whose root also exports the Node-only file key store and blob cache.
export { IndexedDbKeyStore, type IndexedDbKeyStoreOptions } from './indexeddb-key-store.js';
export { IndexedDbBlobCache, type IndexedDbBlobCacheOptions } from './indexeddb-blob-cache.js';
export {
  startBrowserDevice,
  initBrowserBackend,
  type BrowserDevice,
  type BrowserDeviceOptions,
} from './browser-device.js';
export { FlotillaDevice, type DeviceStopReason } from '../device/flotilla-device.js';
export { TfjsTrainer, type LocalData, type TfjsTrainerOptions } from '../device/tfjs-trainer.js';
export type { Trainer, TrainContext, TrainOutcome } from '../device/trainer.js';
export type { FlotillaDeviceOptions, FlotillaDeviceEvents } from '../device/options.js';
export type { DeviceLogger } from '../device/logger.js';
export { MemoryKeyStore, loadOrCreateDeviceKeys, type KeyStore } from '../identity/key-store.js';
export { enrollDevice } from '../identity/enroll.js';
export type { LocalDataset } from '../training/dataset.js';
export { syntheticClusters, type SyntheticClustersOptions } from '../training/synthetic-clusters.js';
