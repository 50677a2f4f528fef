import type { Redis } from 'ioredis';
import {
  FlotillaError,
  SIGNING_DOMAINS,
  isCompatibleProtocol,
  maxExamplesPerUpdate,
  sha256Hex,
  verifyPayload,
  type RoundPlan,
  type UpdateReceipt,
  type UpdateSubmission,
} from '@flotilla/protocol';
import type { BlobAccess, BlobStore } from '../shared/blob-store/index.js';
import type { RedisKeys } from '../shared/keys.js';
import type { TaskRegistry } from '../shared/task-registry.js';
import type { AcceptedUpdate } from './accepted-update.js';
import type { DeviceRecord, DeviceRegistry } from './device-registry.js';
import type { RecentUploads } from './recent-uploads.js';
import type { RoundEvents } from './round-events.js';
import { takesResponses } from './round-machine.js';
import type { RoundStore } from './round-store.js';
import { readSubmissionState } from './submission-state.js';
import { validateDeltaBlob } from './update-validator.js';
import type { ValidationGate } from './validation-gate.js';

export interface AcceptUpdateDeps {
  redis: Redis;
  keys: RedisKeys;
  rounds: RoundStore;
  tasks: TaskRegistry;
  devices: DeviceRegistry;
  blobs: BlobStore;
  /** Who uploaded which blob; auditors' access to raw deltas. */
  access: BlobAccess;
  /** Bounds the blob reads of validation (one at a time per device, a byte budget in all). */
  validations: ValidationGate;
  events: RoundEvents;
  /** Verified bytes of recent uploads: validated from memory instead of read back and hashed again. */
  recentUploads?: RecentUploads;
  /** Counts each validation by where its bytes came from. */
  observeValidation?: (source: 'upload' | 'store') => void;
}

function roundNumberOf(roundId: string): number {
  return Number(roundId.slice(roundId.lastIndexOf(':') + 1));
}

/** `details.kind` of the DUPLICATE_UPDATE that acknowledges an accepted update once more. */
const RESUBMISSION = 'resubmission';

/**
 * True for the DUPLICATE_UPDATE answering the identical signed update re-sent after a lost ack:
 * an acceptance acknowledged again, not a refusal (nothing is logged or counted as refused).
 */
export function isAcknowledgedResubmission(error: unknown): error is FlotillaError {
  return FlotillaError.is(error, 'DUPLICATE_UPDATE') && error.details?.kind === RESUBMISSION;
}

/**
 * A device whose ack was lost re-submits the same signed update, possibly after the round closed
 * (its update may have been the one that closed it). It must learn that the update was accepted,
 * so this is checked before the round's state: DUPLICATE_UPDATE for the identical signed update,
 * whatever the round's state now (`isAcknowledgedResubmission` tells it from a refusal).
 */
function acknowledgeResubmission(
  submission: UpdateSubmission,
  stored: AcceptedUpdate | null,
  device: DeviceRecord | null,
): void {
  const { metadata } = submission;
  if (stored?.signature !== submission.signature || stored.blobDigest !== metadata.blobDigest) return;
  if (!device || !verifyPayload(SIGNING_DOMAINS.update, metadata, submission.signature, device.publicKey))
    return;
  throw new FlotillaError(
    'DUPLICATE_UPDATE',
    `this update was already accepted in round ${metadata.roundId} at ${stored.acceptedAt}`,
    { details: { kind: RESUBMISSION, roundId: metadata.roundId } },
  );
}

/** The stored bytes of `digest`, checked against the signed digest and size. */
async function readVerified(blobs: BlobStore, digest: string, size: number): Promise<Uint8Array> {
  const bytes = await blobs.get(digest);
  if (!bytes) throw new FlotillaError('BLOB_MISSING', `blob ${digest} was not uploaded`);
  if (bytes.length !== size || sha256Hex(bytes) !== digest)
    throw new FlotillaError('DIGEST_MISMATCH', 'stored blob does not match the signed digest and size');
  return bytes;
}

/**
 * Runs every acceptance check on an `update:submit` from the authenticated `deviceId` and stores
 * the update atomically with its counters. Resolves only once the acceptance is durable in Redis;
 * throws FlotillaError with the refusal reason otherwise (the caller records the refusal).
 */
export async function acceptUpdate(
  deps: AcceptUpdateDeps,
  deviceId: string,
  submission: UpdateSubmission,
): Promise<{ receipt: UpdateReceipt; record: AcceptedUpdate; count: number; plan: RoundPlan }> {
  const { metadata } = submission;
  if (!isCompatibleProtocol(metadata.protocolVersion))
    throw new FlotillaError('VERSION_MISMATCH', `protocol ${metadata.protocolVersion} is not supported`);
  if (metadata.deviceId !== deviceId)
    throw new FlotillaError('FORBIDDEN', 'update names a device other than the authenticated one');
  const state = await readSubmissionState(deps, deviceId, submission);
  acknowledgeResubmission(submission, state.stored, state.device);
  const { round, device, signed } = state;
  if (!round) throw new FlotillaError('NO_ACTIVE_ROUND', `task ${metadata.taskId} has no round`);
  if (metadata.roundId !== round.roundId) {
    const submitted = roundNumberOf(metadata.roundId);
    if (metadata.roundId.startsWith(`${metadata.taskId}:`) && submitted < round.roundNumber)
      throw new FlotillaError(
        'STALE_ROUND',
        `round ${metadata.roundId} is over; the current round is ${round.roundId}`,
      );
    throw new FlotillaError('NO_ACTIVE_ROUND', `round ${metadata.roundId} is not open`);
  }
  if (metadata.nonce !== round.nonce)
    throw new FlotillaError('NONCE_MISMATCH', 'nonce does not match the round plan');
  if (!takesResponses(round) || !round.plan)
    throw new FlotillaError('ROUND_CLOSED', `round ${round.roundId} is ${round.state}`);
  const plan = round.plan;
  if (!state.selected)
    throw new FlotillaError('NOT_SELECTED', `device was not selected for round ${round.roundId}`);
  if (device?.status !== 'active') throw new FlotillaError('REVOKED_DEVICE', 'device is not enrolled');
  if (!verifyPayload(SIGNING_DOMAINS.update, metadata, submission.signature, device.publicKey))
    throw new FlotillaError('BAD_SIGNATURE', 'update signature does not verify with the enrolled key');
  const now = Date.now();
  if (now > plan.deadline || (round.closeAt !== undefined && now > round.closeAt))
    throw new FlotillaError('ROUND_CLOSED', 'the reporting deadline has passed');
  if (state.responded)
    throw new FlotillaError('DUPLICATE_UPDATE', 'this device already reported in this round');
  if (metadata.adapterVersion !== plan.adapter.version)
    throw new FlotillaError(
      'STALE_ROUND',
      `update trained from version ${metadata.adapterVersion}, plan is ${plan.adapter.version}`,
    );
  if (!signed) throw new FlotillaError('NOT_FOUND', `task ${metadata.taskId} not found`);
  const maxExamples = maxExamplesPerUpdate(signed.task);
  if (metadata.numExamples > maxExamples)
    throw new FlotillaError(
      'EXAMPLES_EXCEEDED',
      `update claims ${metadata.numExamples} examples; the task allows at most ${maxExamples} per update`,
    );
  if (metadata.blobBytes > plan.budget.maxUploadBytes)
    throw new FlotillaError(
      'BLOB_TOO_LARGE',
      `blob of ${metadata.blobBytes} bytes exceeds ${plan.budget.maxUploadBytes}`,
    );
  // Cheap checks before the blob is read: a submission naming a large blob it did not upload,
  // or with the wrong size, costs a stat and a set lookup, not a read and a hash.
  // Lent until validated: its buffer is reused for later uploads once no reader holds it.
  const kept = deps.recentUploads?.borrow(metadata.blobDigest);
  let norm: number;
  try {
    const size = kept?.bytes.length ?? (await deps.blobs.size(metadata.blobDigest));
    // Only bytes this device uploaded: another device's delta is neither readable nor submittable
    // by it. BLOB_MISSING makes an honest device upload again (which records it as uploader).
    if (size === null || !state.uploader)
      throw new FlotillaError('BLOB_MISSING', `blob ${metadata.blobDigest} was not uploaded by this device`);
    if (size !== metadata.blobBytes)
      throw new FlotillaError(
        'DIGEST_MISMATCH',
        `stored blob is ${size} bytes, the update says ${metadata.blobBytes}`,
      );
    ({ norm } = await deps.validations.run(deviceId, size, async (waited) => {
      // A burst of identical submissions waits here: once one is accepted, the rest need no read.
      if (waited && (await deps.rounds.hasResponded(round.roundId, deviceId)))
        throw new FlotillaError('DUPLICATE_UPDATE', 'this device already reported in this round');
      // Bytes kept from the upload were hashed as they arrived; bytes read back are hashed again.
      const bytes = kept?.bytes ?? (await readVerified(deps.blobs, metadata.blobDigest, metadata.blobBytes));
      deps.observeValidation?.(kept ? 'upload' : 'store');
      return validateDeltaBlob(bytes, signed.task, plan);
    }));
  } finally {
    kept?.release();
  }

  const acceptedAt = Date.now();
  // One keyed hash (HMAC-SHA-256) per update: the id and the record name the same pseudonym.
  const devicePseudonym = deps.events.pseudonymize(deviceId);
  const record: AcceptedUpdate = {
    updateId: `${round.roundId}:${metadata.blobDigest.slice(0, 16)}:${devicePseudonym.slice(4, 16)}`,
    deviceId,
    devicePseudonym,
    blobDigest: metadata.blobDigest,
    blobBytes: metadata.blobBytes,
    numExamples: metadata.numExamples,
    norm,
    reportedNorm: metadata.reportedNorm,
    clipped: metadata.clipped,
    quantization: metadata.quantization,
    signature: submission.signature,
    acceptedAt,
    ...(round.dp === true
      ? { commitment: deps.events.commitUpdate(round.roundId, metadata.blobDigest) }
      : {}),
  };
  const result = await deps.rounds.accept(round.roundId, deviceId, JSON.stringify(record), acceptedAt);
  if (result.status !== 'OK') {
    // Two identical submissions raced past the first check: the second is the resubmission.
    if (result.status === 'DUPLICATE_UPDATE')
      acknowledgeResubmission(
        submission,
        await deps.rounds.acceptedUpdate(metadata.roundId, deviceId),
        await deps.devices.getDevice(deviceId),
      );
    throw new FlotillaError(result.status, `update refused: ${result.status}`);
  }
  deps.recentUploads?.forget(metadata.blobDigest);
  if (signed.task.policy.auditorDeltaAccess === true) await deps.access.grantAuditors(metadata.blobDigest);
  return {
    receipt: { roundId: round.roundId, blobDigest: metadata.blobDigest, norm, acceptedAt, logLeaf: null },
    record,
    count: result.count,
    plan,
  };
}
