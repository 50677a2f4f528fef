import { z } from 'zod';
import {
  FlotillaError,
  decodeFloat32Tensors,
  type AdapterPromoted,
  type SignedManifest,
  type SigningKeyPair,
} from '@flotilla/protocol';
import type { AdapterRegistry } from '../shared/adapter-registry.js';
import type { BlobStore } from '../shared/blob-store/index.js';
import { promoteAdapter } from '../shared/promotion/promote-adapter.js';
import type { TaskRegistry } from '../shared/task-registry.js';
import type { RoundEvents } from './round-events.js';

export const RollbackRequestSchema = z.object({
  /** The version whose content becomes current again. */
  toVersion: z.number().int().positive(),
  /** Why: recorded in the manifest and the round log. */
  reason: z.string().min(1).max(2000),
});
export type RollbackRequest = z.infer<typeof RollbackRequestSchema>;

export interface RollbackDeps {
  tasks: TaskRegistry;
  adapters: AdapterRegistry;
  blobs: BlobStore;
  signingKey: SigningKeyPair;
  roundEvents: RoundEvents;
  /** Tells the fleet (`adapter:promoted`). */
  announce: (promoted: AdapterPromoted) => void;
  now?: () => number;
}

async function adapterOf(deps: RollbackDeps, signed: SignedManifest) {
  const bytes = await deps.blobs.get(signed.manifest.adapter.f32.digest);
  if (!bytes)
    throw new FlotillaError('BLOB_MISSING', `adapter blob of version ${signed.manifest.version} is missing`);
  return decodeFloat32Tensors(bytes).tensors;
}

/**
 * A rollback is a new promotion of old content: version latest+1 carries the adapter of
 * `toVersion`, its delta from the latest, `rollbackOf`, the reason, and a fresh signature.
 * Devices follow it like any promotion; history is never rewritten. Privacy spent stays spent, so
 * the manifest keeps the latest ε.
 */
export async function rollbackAdapter(
  deps: RollbackDeps,
  taskId: string,
  request: RollbackRequest,
): Promise<SignedManifest> {
  const signedTask = await deps.tasks.getTask(taskId);
  if (!signedTask) throw new FlotillaError('NOT_FOUND', `unknown task ${taskId}`);
  const latestVersion = await deps.adapters.latestVersion(taskId);
  if (request.toVersion >= latestVersion) {
    throw new FlotillaError(
      'BAD_REQUEST',
      `can only roll back to a version before the latest (v${latestVersion})`,
    );
  }
  const target = await deps.adapters.getManifest(taskId, request.toVersion);
  const latest = await deps.adapters.getManifest(taskId, latestVersion);
  if (!target || !latest)
    throw new FlotillaError('NOT_FOUND', `version ${request.toVersion} of ${taskId} is not promoted`);
  const promotion = await promoteAdapter({
    task: signedTask.task,
    parentVersion: latestVersion,
    parentAdapter: await adapterOf(deps, latest),
    adapter: await adapterOf(deps, target),
    roundId: null,
    aggregation: { strategy: 'rollback', loraRule: target.manifest.aggregation.loraRule, participants: 0 },
    metrics: target.manifest.metrics,
    audit: { decision: 'rollback', reasons: [request.reason] },
    privacy: latest.manifest.privacy,
    rollbackOf: request.toVersion,
    createdAt: (deps.now ?? Date.now)(),
    blobs: deps.blobs,
    registry: deps.adapters,
    signingKey: deps.signingKey,
  });
  const manifest = promotion.signed.manifest;
  await deps.roundEvents.append({
    type: 'rollback',
    taskId,
    version: manifest.version,
    rollbackOf: request.toVersion,
    manifestDigest: promotion.manifestDigest,
    adapterDigest: manifest.adapter.f32.digest,
    reason: request.reason,
  });
  deps.announce({ taskId, version: manifest.version, manifestDigest: promotion.manifestDigest });
  return promotion.signed;
}
