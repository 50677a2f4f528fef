import { FlotillaError, SignedManifestSchema, type SignedManifest } from '@flotilla/protocol';
import { manifestBlobDigests } from './blob-store/manifest-blobs.js';
import { RedisStore, type RedisStoreOptions } from './redis-store.js';
import { runScript } from './redis-script.js';

// Promotes version N only if the latest is N-1 and N is not stored yet: one version, one promotion.
// The manifest's artifacts (ARGV[3..]) become fleet-readable in the same step (blob-access.ts).
const PUT_MANIFEST = `
local latest = tonumber(redis.call('GET', KEYS[2]) or '0')
local version = tonumber(ARGV[1])
if version ~= latest + 1 then return latest end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return latest end
redis.call('SET', KEYS[2], ARGV[1])
for i = 3, #ARGV do redis.call('SADD', KEYS[3], ARGV[i]) end
return -1
`;

export type AdapterRegistryOptions = RedisStoreOptions;

/** Signed adapter manifests per task, versioned 1, 2, 3… */
export class AdapterRegistry extends RedisStore {
  /** Latest promoted version, 0 when none. */
  async latestVersion(taskId: string): Promise<number> {
    const raw = await this.redis.get(this.keys.adapterLatest(taskId));
    return raw === null ? 0 : Number(raw);
  }

  async getManifest(taskId: string, version: number): Promise<SignedManifest | null> {
    const raw = await this.redis.hget(this.keys.adapterManifests(taskId), String(version));
    return raw === null ? null : SignedManifestSchema.parse(JSON.parse(raw));
  }

  /** Stores a manifest as the next version; throws BAD_REQUEST if its version is not latest + 1. */
  async putManifest(signed: SignedManifest): Promise<void> {
    const parsed = SignedManifestSchema.parse(signed);
    const { taskId, version } = parsed.manifest;
    const result = await runScript(
      this.redis,
      PUT_MANIFEST,
      3,
      this.keys.adapterManifests(taskId),
      this.keys.adapterLatest(taskId),
      this.keys.blobFleetReadable(),
      String(version),
      JSON.stringify(parsed),
      ...manifestBlobDigests(parsed.manifest),
    );
    if (result !== -1)
      throw new FlotillaError(
        'BAD_REQUEST',
        `version ${version} of ${taskId} is not next after ${String(result)}`,
      );
  }

  /** Every stored manifest of the task, by version. */
  async listManifests(taskId: string): Promise<SignedManifest[]> {
    const all = await this.redis.hgetall(this.keys.adapterManifests(taskId));
    return Object.entries(all)
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([, raw]) => SignedManifestSchema.parse(JSON.parse(raw)));
  }

  async listVersions(taskId: string): Promise<number[]> {
    const fields = await this.redis.hkeys(this.keys.adapterManifests(taskId));
    return fields.map(Number).sort((a, b) => a - b);
  }
}
