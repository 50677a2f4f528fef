// Who may read which blob. Blobs are content-addressed and carry no owner, so the coordinator
// keeps, in Redis (shared by every coordinator process), what it learned when a blob got a role:
//
//   fleet      base models (TaskRegistry.createTask) and promoted artifacts: the full adapter, the
//              delta from the parent version and adapter_config.json of every manifest
//              (AdapterRegistry.putManifest); readable by every enrolled device and by auditors
//   uploaders  per digest, the devices that uploaded bytes hashing to it (PUT /blobs, whose body
//              is always hashed, also for a digest already stored): they hold those bytes anyway
//   auditor    raw deltas accepted in a task whose policy sets `auditorDeltaAccess`
//
// Everything else (raw per-device deltas, aggregates, shard sums, optimizer state) is readable only
// by the operator and the worker, which reads the store directly. Reads default to refusal: a
// blob nobody recorded is private.
import type { AdapterRegistry } from '../adapter-registry.js';
import { manifestBlobDigests } from './manifest-blobs.js';
import type { TaskRegistry } from '../task-registry.js';
import { RedisStore, type RedisStoreOptions } from '../redis-store.js';

/** Who asks for a blob, from the request's bearer token. */
export type BlobPrincipal = { kind: 'operator' } | { kind: 'auditor' } | { kind: 'device'; deviceId: string };

export type BlobAccessOptions = RedisStoreOptions;

export class BlobAccess extends RedisStore {
  /** Whether `principal` may read the blob `digest` (whether or not it is stored). */
  async canRead(principal: BlobPrincipal, digest: string): Promise<boolean> {
    if (principal.kind === 'operator') return true;
    const fleet = this.keys.blobFleetReadable();
    if (principal.kind === 'auditor') {
      const [inFleet, granted] = await this.redis
        .multi()
        .sismember(fleet, digest)
        .sismember(this.keys.blobAuditorReadable(), digest)
        .exec()
        .then((results) => (results ?? []).map(([, value]) => value === 1));
      return inFleet === true || granted === true;
    }
    const [inFleet, uploaded] = await this.redis
      .multi()
      .sismember(fleet, digest)
      .sismember(this.keys.blobUploaders(digest), principal.deviceId)
      .exec()
      .then((results) => (results ?? []).map(([, value]) => value === 1));
    return inFleet === true || uploaded === true;
  }

  /** Records that `deviceId` uploaded bytes hashing to `digest`. */
  async addUploader(digest: string, deviceId: string): Promise<void> {
    await this.redis.sadd(this.keys.blobUploaders(digest), deviceId);
  }

  async isUploader(digest: string, deviceId: string): Promise<boolean> {
    return (await this.redis.sismember(this.keys.blobUploaders(digest), deviceId)) === 1;
  }

  /** Lets auditors read a raw delta (its task's policy sets `auditorDeltaAccess`). */
  async grantAuditors(digest: string): Promise<void> {
    await this.redis.sadd(this.keys.blobAuditorReadable(), digest);
  }

  /** Drops what is recorded about a deleted blob (garbage collection). Fleet entries stay. */
  async forget(digest: string): Promise<void> {
    await this.redis
      .multi()
      .del(this.keys.blobUploaders(digest))
      .srem(this.keys.blobAuditorReadable(), digest)
      .exec();
  }

  /**
   * Records the fleet-readable blobs of tasks and manifests stored before this bookkeeping
   * existed (idempotent; the coordinator runs it at start).
   */
  async backfill(tasks: TaskRegistry, adapters: AdapterRegistry): Promise<void> {
    const digests: string[] = [];
    for (const { task } of await tasks.listTasks()) {
      digests.push(task.baseModel.digest);
      for (const signed of await adapters.listManifests(task.taskId))
        digests.push(...manifestBlobDigests(signed.manifest));
    }
    if (digests.length > 0) await this.redis.sadd(this.keys.blobFleetReadable(), ...digests);
  }
}
