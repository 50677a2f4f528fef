// Which uploads a device may make. A device uploads its delta for a round it was selected in,
// so an upload is admitted only while such a round is in REPORTING: its size cap is that
// round's `budget.maxUploadBytes` (the device's own task's `policy.maxBlobBytes`, within the
// global cap), and it counts against the device's quota of distinct blobs in that round.
import type { Redis } from 'ioredis';
import { FlotillaError, type RoundPlan } from '@flotilla/protocol';
import type { RedisKeys } from '../shared/keys.js';
import type { UploadAdmission } from './blob-routes.js';
import { RESPONDING_STATE } from './round-machine.js';
import { runScript } from '../shared/redis-script.js';
import { parseRoundPlan } from './round-store.js';

/** Distinct blobs a device may store per round: its delta, with room for a re-encoded retry. */
export const DEFAULT_MAX_UPLOADS_PER_ROUND = 4;

/** The quota set outlives its round's deadline by this much (ms), then expires: 1 h. */
const QUOTA_TTL_AFTER_DEADLINE_MS = 3_600_000;

export interface UploadAdmissionDeps {
  redis: Redis;
  keys: RedisKeys;
  /** Global cap on device uploads, bytes; the round's `budget.maxUploadBytes` applies below it. */
  maxDeviceBlobBytes: number;
  /** Distinct blobs a device may store per round. Default `DEFAULT_MAX_UPLOADS_PER_ROUND` (4). */
  maxUploadsPerRound: number;
  /** Clock, epoch ms; default Date.now. */
  now?: () => number;
}

// Reserves `digest` in the device's quota set of the round. KEYS[1] quota set. ARGV: digest,
// limit, expire-at (epoch ms). Returns 1 already reserved (a retry), 2 newly reserved, 0 over quota.
const RESERVE = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 2
`;

interface OpenRound {
  roundId: string;
  plan: RoundPlan;
}

/**
 * Rounds in REPORTING, before their deadline, that selected `deviceId`. A task has one current
 * round, so this is a few pipelined reads whatever the fleet size.
 */
async function openRoundsOf(deps: UploadAdmissionDeps, deviceId: string, now: number): Promise<OpenRound[]> {
  const { redis, keys } = deps;
  const taskIds = await redis.zrange(keys.tasks(), 0, -1);
  if (taskIds.length === 0) return [];
  const roundIds = (await redis.mget(taskIds.map((id) => keys.currentRound(id)))).filter(
    (id): id is string => id !== null,
  );
  const pipeline = redis.pipeline();
  for (const roundId of roundIds) {
    pipeline.hmget(keys.round(roundId), 'state', 'plan');
    pipeline.sismember(keys.roundSelected(roundId), deviceId);
  }
  const results = (await pipeline.exec()) ?? [];
  const open: OpenRound[] = [];
  roundIds.forEach((roundId, i) => {
    const [stateError, fields] = results[2 * i] ?? [];
    const [selectedError, selected] = results[2 * i + 1] ?? [];
    if (stateError) throw stateError;
    if (selectedError) throw selectedError;
    const [state, planJson] = fields as [string | null, string | null];
    if (state !== RESPONDING_STATE || planJson === null || selected !== 1) return;
    const plan = parseRoundPlan(planJson);
    if (now <= plan.deadline) open.push({ roundId, plan });
  });
  return open;
}

/** Admits a device's upload of `digest` (cap and quota of its round), or throws the refusal. */
export function createUploadAdmission(deps: UploadAdmissionDeps) {
  const now = deps.now ?? Date.now;
  return async (deviceId: string, digest: string): Promise<UploadAdmission> => {
    const at = now();
    const rounds = await openRoundsOf(deps, deviceId, at);
    // Selected in several tasks' rounds at once: the upload is charged to the one allowing most.
    const round = rounds.sort((a, b) => b.plan.budget.maxUploadBytes - a.plan.budget.maxUploadBytes)[0];
    if (!round)
      throw new FlotillaError(
        'NOT_SELECTED',
        'no round in REPORTING selected this device: uploads are deltas for a round the device was selected in',
      );
    const quotaKey = deps.keys.blobQuota(round.roundId, deviceId);
    const reserved = await runScript(
      deps.redis,
      RESERVE,
      1,
      quotaKey,
      digest,
      deps.maxUploadsPerRound,
      round.plan.deadline + QUOTA_TTL_AFTER_DEADLINE_MS,
    );
    if (reserved === 0)
      throw new FlotillaError(
        'QUOTA_EXCEEDED',
        `this device already stored ${deps.maxUploadsPerRound} blobs in round ${round.roundId}`,
      );
    return {
      maxBytes: Math.min(deps.maxDeviceBlobBytes, round.plan.budget.maxUploadBytes),
      // Only a reservation made by this upload is given back; a retry's belongs to the first try.
      release: async () => {
        if (reserved === 2) await deps.redis.srem(quotaKey, digest);
      },
    };
  };
}
