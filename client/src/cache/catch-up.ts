import { FlotillaError, type AdapterManifest, type ArtifactSet, type Eligibility } from '@flotilla/protocol';
import { silentLogger, type DeviceLogger } from '../device/logger.js';
import { addDelta, decodeArtifact, type NamedTensors } from './adapter-tensors.js';
import { assertDigest, type BlobCache } from './blob-cache.js';
import { verifySignedManifest } from './signed-manifest.js';

/** An adapter as the device holds it: tensors plus the (verified) manifest they came from. */
export interface LocalAdapter {
  /** Adapter version (0 = the freshly initialised adapter, or none yet). */
  version: number;
  /** Empty when the device holds no adapter tensors yet (catch-up then fetches the full adapter). */
  tensors: NamedTensors;
  manifest: AdapterManifest | null;
}

/** How the device reaches the coordinator's manifests and blobs; injected so catch-up is testable. */
export interface AdapterFetcher {
  /** The signed manifest document (untrusted JSON) of `version`, or of the latest version. */
  fetchManifest(taskId: string, version: number | 'latest'): Promise<unknown>;
  /** The blob stored under `digest` (untrusted bytes: catch-up verifies the digest). */
  fetchBlob(digest: string): Promise<Uint8Array>;
}

export type ArtifactPrecision = 'f32' | 'f16' | 'int8';

/**
 * Download precision by compute class: high → f32; medium → f16; low → int8 when the manifest
 * offers it, else f16.
 */
export function precisionFor(
  computeClass: Eligibility['computeClass'],
  artifacts: ArtifactSet,
): ArtifactPrecision {
  if (computeClass === 'high') return 'f32';
  if (computeClass === 'low' && artifacts.int8) return 'int8';
  return 'f16';
}

export interface CatchUpOptions {
  taskId: string;
  current: LocalAdapter;
  /** Pinned coordinator public key (base64). */
  coordinatorKey: string;
  fetcher: AdapterFetcher;
  computeClass: Eligibility['computeClass'];
  /** Version to reach; default: the latest one the coordinator serves. */
  targetVersion?: number;
  /** Local content-addressed cache consulted before downloading and filled after verification. */
  cache?: BlobCache;
  logger?: DeviceLogger;
  /** Longest delta chain walked before falling back to the full adapter. Default 1000 versions. */
  maxChainLength?: number;
}

export interface CatchUpResult {
  /** `refused`: something failed verification; `adapter` is then the unchanged current adapter. */
  status: 'up-to-date' | 'updated' | 'refused';
  adapter: LocalAdapter;
  route: 'delta-chain' | 'full' | null;
  precision: ArtifactPrecision | null;
  /** Blob bytes downloaded (cache hits excluded; manifests excluded). */
  bytesDown: number;
  /** Why the update was refused, when it was. */
  reason?: string;
}

/**
 * Brings `current` to the latest (or target) adapter version. Every manifest on the way is
 * verified against the pinned coordinator key and every blob against its digest before it is
 * used; the route is the chain of deltas from the local version, or the full adapter when its
 * `expectedCost.fullBytes` is below the chain's summed `expectedCost.deltaBytes` (or no chain
 * exists). Never mutates `current`; on any failure the result is `refused` with `current`.
 */
export async function catchUpAdapter(options: CatchUpOptions): Promise<CatchUpResult> {
  const logger = options.logger ?? silentLogger;
  const counter = { bytesDown: 0 };
  try {
    return await catchUp(options, logger, counter);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const code = FlotillaError.is(error) ? error.code : 'INTERNAL';
    logger.warn(
      { taskId: options.taskId, version: options.current.version, code, reason },
      'adapter update refused; keeping the current adapter',
    );
    return {
      status: 'refused',
      adapter: options.current,
      route: null,
      precision: null,
      bytesDown: counter.bytesDown,
      reason: `${code}: ${reason}`,
    };
  }
}

async function catchUp(
  options: CatchUpOptions,
  logger: DeviceLogger,
  counter: { bytesDown: number },
): Promise<CatchUpResult> {
  const { taskId, current, fetcher, coordinatorKey } = options;
  const verify = async (version: number | 'latest'): Promise<AdapterManifest> =>
    verifySignedManifest(await fetcher.fetchManifest(taskId, version), {
      coordinatorKey,
      taskId,
      ...(version === 'latest' ? {} : { version }),
    });

  let target: AdapterManifest;
  try {
    target = await verify(options.targetVersion ?? 'latest');
  } catch (error) {
    // No version promoted yet: nothing to catch up to, which is not a refusal.
    if (options.targetVersion === undefined && FlotillaError.is(error, 'NOT_FOUND'))
      return { status: 'up-to-date', adapter: current, route: null, precision: null, bytesDown: 0 };
    throw error;
  }
  if (target.version <= current.version)
    return { status: 'up-to-date', adapter: current, route: null, precision: null, bytesDown: 0 };

  const precision = precisionFor(options.computeClass, target.adapter);
  const chain = await deltaChain(target, current, verify, options.maxChainLength ?? 1000);
  const chainBytes =
    chain?.reduce((sum, m) => sum + m.expectedCost.deltaBytes, 0) ?? Number.POSITIVE_INFINITY;
  const useFull = chain === null || target.expectedCost.fullBytes < chainBytes;

  const load = async (artifacts: ArtifactSet): Promise<NamedTensors> => {
    const artifact = artifacts[precisionFor(options.computeClass, artifacts)] ?? artifacts.f16;
    return decodeArtifact(await loadBlob(artifact.digest, fetcher, options.cache, counter));
  };

  let tensors: NamedTensors;
  if (useFull) {
    tensors = await load(target.adapter);
  } else {
    tensors = current.tensors;
    for (const manifest of chain) {
      if (!manifest.delta) throw new FlotillaError('NOT_FOUND', `version ${manifest.version} has no delta`);
      tensors = addDelta(tensors, await load(manifest.delta));
    }
  }
  logger.info(
    {
      taskId,
      from: current.version,
      to: target.version,
      route: useFull ? 'full' : 'delta-chain',
      precision,
      bytesDown: counter.bytesDown,
    },
    'adapter caught up',
  );
  return {
    status: 'updated',
    adapter: { version: target.version, tensors, manifest: target },
    route: useFull ? 'full' : 'delta-chain',
    precision,
    bytesDown: counter.bytesDown,
  };
}

/**
 * The verified manifests from `current.version` (exclusive) to `target` (inclusive), oldest
 * first, following `parentVersion`; null when no delta chain leads from the local adapter.
 */
async function deltaChain(
  target: AdapterManifest,
  current: LocalAdapter,
  verify: (version: number) => Promise<AdapterManifest>,
  maxLength: number,
): Promise<AdapterManifest[] | null> {
  if (current.tensors.size === 0) return null;
  if (current.manifest && current.manifest.baseModelDigest !== target.baseModelDigest) return null;
  const chain: AdapterManifest[] = [];
  let cursor = target;
  for (;;) {
    if (!cursor.delta || cursor.baseModelDigest !== target.baseModelDigest) return null;
    chain.unshift(cursor);
    if (cursor.parentVersion === current.version) return chain;
    if (cursor.parentVersion < current.version || chain.length >= maxLength) return null;
    cursor = await verify(cursor.parentVersion);
  }
}

async function loadBlob(
  digest: string,
  fetcher: AdapterFetcher,
  cache: BlobCache | undefined,
  counter: { bytesDown: number },
): Promise<Uint8Array> {
  const cached = await cache?.get(digest);
  if (cached) return cached;
  const bytes = await fetcher.fetchBlob(digest);
  counter.bytesDown += bytes.byteLength;
  assertDigest(digest, bytes);
  await cache?.put(digest, bytes);
  return bytes;
}
