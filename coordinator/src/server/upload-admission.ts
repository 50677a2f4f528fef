// Which uploads a device may make. A device uploads its delta for a round it was selected in,
// so an upload is admitted only while such a round is in REPORTING: its size cap is that
// round's `budget.maxUploadBytes` (the device's own task's `policy.maxBlobBytes`, within the
// global cap), and it counts against the device's quota of distinct blobs in that round.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { FlotillaError } from '@flotilla/protocol';
import type { RedisKeys } from '../shared/keys.js';
import { resultCode } from '../shared/lua-script.js';
import { runScript } from '../shared/redis-script.js';
import { ID_SLOTS, textAroundIds } from './key-slots.js';
import { ADMIT_UPLOAD } from './lua/round-scripts.js';
import type { SessionStore } from './sessions.js';

/** Distinct blobs a device may store per round: its delta, with room for a re-encoded retry. */
export const DEFAULT_MAX_UPLOADS_PER_ROUND = 4;

/** The quota set outlives its round's deadline by this much (ms), then expires: 1 h. */
const QUOTA_TTL_AFTER_DEADLINE_MS = 3_600_000;

export interface UploadAdmissionDeps {
  redis: Redis;
  keys: RedisKeys;
  /** Where a session token's key is named. */
  sessions: SessionStore;
  /** Global cap on device uploads, bytes; the round's `budget.maxUploadBytes` applies below it. */
  maxDeviceBlobBytes: number;
  /** Distinct blobs a device may store per round. Default `DEFAULT_MAX_UPLOADS_PER_ROUND` (4). */
  maxUploadsPerRound: number;
  /** Clock, epoch ms; default Date.now. */
  now?: () => number;
}

/** What an upload may be, decided before its body is read. */
export interface UploadAdmission {
  /** Largest body accepted, bytes. */
  maxBytes: number;
  /** Gives back what was reserved for an upload that stored nothing. */
  release(): Promise<void>;
}

/** A device's upload admitted: who uploads, and within what. */
export interface AdmittedDeviceUpload {
  deviceId: string;
  admission: UploadAdmission;
}

const ReplySchema = z.tuple([z.number().int(), z.string(), z.string(), z.number().int()]);

/** ARGV[5..15] of upload-admit.lua: the keys it builds, as keys.ts names them. */
function keyTemplates(keys: RedisKeys): string[] {
  const [a, b] = ID_SLOTS;
  return [
    ...textAroundIds(keys.device(a)),
    ...textAroundIds(keys.currentRound(a)),
    ...textAroundIds(keys.round(a)),
    ...textAroundIds(keys.roundSelected(a)),
    ...textAroundIds(keys.blobQuota(a, b)),
  ];
}

/**
 * Admits a device's upload of `digest` by its session token, in one Redis script (upload-admit.lua):
 * the session's device, the round the upload is charged to and its size cap, and the digest
 * reserved in the device's quota of that round. Null when the token names no live session of an
 * active device; NOT_SELECTED or QUOTA_EXCEEDED thrown as the refusal.
 */
export function createUploadAdmission(deps: UploadAdmissionDeps) {
  const now = deps.now ?? Date.now;
  const templates = keyTemplates(deps.keys);
  return async (sessionToken: string, digest: string): Promise<AdmittedDeviceUpload | null> => {
    const sessionKey = deps.sessions.keyOf(sessionToken);
    if (sessionKey === null) return null;
    const reply = await runScript(
      deps.redis,
      ADMIT_UPLOAD.source,
      2,
      sessionKey,
      deps.keys.tasks(),
      digest,
      deps.maxUploadsPerRound,
      now(),
      QUOTA_TTL_AFTER_DEADLINE_MS,
      ...templates,
    );
    const parsed = ReplySchema.safeParse(reply);
    if (!parsed.success)
      throw new FlotillaError('INTERNAL', `upload-admit.lua returned ${JSON.stringify(reply)}`);
    const [code, deviceId, roundId, maxUploadBytes] = parsed.data;
    const outcome = resultCode(ADMIT_UPLOAD, code);
    if (outcome === 'UNAUTHORIZED') return null;
    if (outcome === 'NOT_SELECTED')
      throw new FlotillaError(
        'NOT_SELECTED',
        'no round in REPORTING selected this device: uploads are deltas for a round the device was selected in',
      );
    if (outcome === 'QUOTA_EXCEEDED')
      throw new FlotillaError(
        'QUOTA_EXCEEDED',
        `this device already stored ${deps.maxUploadsPerRound} blobs in round ${roundId}`,
      );
    const quotaKey = deps.keys.blobQuota(roundId, deviceId);
    return {
      deviceId,
      admission: {
        maxBytes: Math.min(deps.maxDeviceBlobBytes, maxUploadBytes),
        // Only a reservation made by this upload is given back; a retry's belongs to the first try.
        release: async () => {
          if (outcome === 'RESERVED') await deps.redis.srem(quotaKey, digest);
        },
      },
    };
  };
}
