// Device runtime (identity, offline cache, FlotillaDevice). Node-only: FileKeyStore, FileBlobCache.
export * from './identity/key-store.js';
export * from './identity/file-key-store.js';
export * from './identity/enroll.js';
export * from './cache/blob-cache.js';
export * from './cache/file-blob-cache.js';
export * from './cache/adapter-tensors.js';
export * from './cache/signed-manifest.js';
export * from './cache/catch-up.js';
export * from './cache/adapter-store.js';
export * from './device/logger.js';
export * from './device/trainer.js';
export * from './device/options.js';
export * from './device/retry.js';
export * from './device/http-client.js';
export * from './device/energy.js';
export * from './device/update-builder.js';
export * from './device/tfjs-trainer.js';
export { FlotillaDevice, type DeviceStopReason } from './device/flotilla-device.js';
// ML (backend choice, base bundle, adapters, local training, replay, int8 quantization).
export * from './backend/index.js';
export * from './model/index.js';
export * from './adapters/index.js';
export * from './training/index.js';
export * from './replay/index.js';
export * from './quantize/index.js';
