import type { Redis } from 'ioredis';
import { LocalDirBlobStore } from './local-dir-blob-store.js';
import { RedisBlobStore } from './redis-blob-store.js';
import type { BlobStore } from './types.js';

export * from './types.js';
export { BlobAccess, type BlobAccessOptions, type BlobPrincipal } from './blob-access.js';
export { ReadArena, ReadArenaPool, type ReadArenaPoolOptions } from './read-arena.js';
export { manifestBlobDigests } from './manifest-blobs.js';
export { LocalDirBlobStore, type LocalDirBlobStoreOptions } from './local-dir-blob-store.js';
export { RedisBlobStore, type RedisBlobStoreOptions } from './redis-blob-store.js';

/** Which blob store to use: a local directory, or Redis (shared by several machines). */
export type BlobStoreConfig =
  { kind: 'local'; dir: string } | { kind: 'redis'; redis: Redis; prefix?: string };

export function openBlobStore(config: BlobStoreConfig): BlobStore {
  if (config.kind === 'local') return new LocalDirBlobStore({ dir: config.dir });
  return new RedisBlobStore({
    redis: config.redis,
    ...(config.prefix !== undefined ? { prefix: config.prefix } : {}),
  });
}
export {
  DEFAULT_BLOB_GC_GRACE_MS,
  DEFAULT_BLOB_GC_INTERVAL_MS,
  collectBlobGarbage,
  type BlobGcOptions,
  type BlobGcResult,
} from './blob-gc.js';
