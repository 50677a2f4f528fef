import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import { DigestSchema } from '@flotilla/protocol';
import type { RedisKeys } from '../shared/keys.js';
import { resultCode } from '../shared/lua-script.js';
import type { TaskRegistry } from '../shared/task-registry.js';
import { AcceptedUpdateSchema, loggedDigest } from './accepted-update.js';
import type { DeviceRecord, DeviceRegistry } from './device-registry.js';
import { EXCLUDE_UPDATE } from './lua/round-scripts.js';
import type { RoundEvents } from './round-events.js';
import { takesResponses } from './round-machine.js';
import type { RoundStore } from './round-store.js';
import type { SessionStore } from './sessions.js';
import { runScript } from '../shared/redis-script.js';

// Revoking a device ends everything it holds, on every coordinator process: its enrollment (no
// new handshake, session or acceptance: those check the record atomically), its session tokens,
// its accepted update in a round still open (taken out, so the round closes without it), and,
// through the `device-revoked` channel, its sockets. The round driver writes the exclusion to
// the round log just before the round's close, so `round.closed.accepted` already leaves it out.

/** What the round keeps of an update taken out of it (`${prefix}:round:<id>:excluded`). */
export const ExcludedUpdateSchema = z.object({
  devicePseudonym: z.string(),
  /** The update as the round log names it (`loggedDigest`: its commitment in a DP round). */
  blobDigest: DigestSchema,
  /** Error code, e.g. `REVOKED_DEVICE`. */
  reason: z.string(),
  message: z.string(),
  /** Epoch ms. */
  at: z.number().int(),
});
export type ExcludedUpdate = z.infer<typeof ExcludedUpdateSchema>;

export interface RevocationDeps {
  redis: Redis;
  keys: RedisKeys;
  devices: DeviceRegistry;
  sessions: SessionStore;
  tasks: TaskRegistry;
  rounds: RoundStore;
  logger: Logger;
}

/** What a revocation did, for the operator's answer. */
export interface Revocation {
  device: DeviceRecord;
  /** Session tokens that were still live. */
  sessionsEnded: number;
  /** Rounds (still open) whose accepted update of this device was taken out. */
  excludedFrom: string[];
}

/**
 * Revokes `deviceId` (UNKNOWN_DEVICE if it was never enrolled): the record first, so every
 * atomic check from then on refuses it, then its sessions and its update in open rounds, then the
 * notice that makes every coordinator process close its sockets. Returns once all of it is stored.
 */
export async function revokeDevice(deps: RevocationDeps, deviceId: string): Promise<Revocation> {
  const device = await deps.devices.revokeDevice(deviceId);
  const sessionsEnded = await deps.sessions.revokeAll(deviceId);
  const excludedFrom: string[] = [];
  for (const signed of await deps.tasks.listTasks()) {
    const round = await deps.rounds.current(signed.task.taskId);
    if (!round) continue;
    // A device waiting for selection must not be selected any more.
    if (round.state === 'SELECTING') await deps.redis.srem(deps.keys.roundWaiting(round.roundId), deviceId);
    if (!takesResponses(round)) continue;
    const stored = await deps.redis.hget(deps.keys.roundUpdates(round.roundId), deviceId);
    const accepted = stored === null ? null : AcceptedUpdateSchema.safeParse(JSON.parse(stored));
    if (!accepted?.success) continue;
    const exclusion: ExcludedUpdate = {
      devicePseudonym: accepted.data.devicePseudonym,
      blobDigest: loggedDigest(accepted.data),
      reason: 'REVOKED_DEVICE',
      message: 'the device was revoked while the round was open; its update is not aggregated',
      at: Date.now(),
    };
    const taken = await runScript(
      deps.redis,
      EXCLUDE_UPDATE.source,
      3,
      deps.keys.round(round.roundId),
      deps.keys.roundUpdates(round.roundId),
      deps.keys.roundExcluded(round.roundId),
      deviceId,
      JSON.stringify(exclusion),
    );
    if (resultCode(EXCLUDE_UPDATE, taken) === 'KEPT') continue;
    excludedFrom.push(round.roundId);
    deps.logger.warn({ deviceId, roundId: round.roundId }, 'accepted update excluded: device revoked');
  }
  await deps.redis.publish(deps.keys.devicesRevoked(), deviceId);
  return { device, sessionsEnded, excludedFrom };
}

/**
 * Writes the round's excluded updates to the round log (`update.excluded`), once: the round
 * driver calls it after the round left REPORTING, when no exclusion can be added any more.
 */
export async function logExclusions(
  deps: { redis: Redis; keys: RedisKeys; events: RoundEvents },
  round: { taskId: string; roundId: string },
): Promise<void> {
  const entries = await deps.redis.hvals(deps.keys.roundExcluded(round.roundId));
  const exclusions = entries
    .map((raw) => ExcludedUpdateSchema.safeParse(JSON.parse(raw)))
    .flatMap((parsed) => (parsed.success ? [parsed.data] : []))
    .sort((a, b) => a.at - b.at || a.blobDigest.localeCompare(b.blobDigest));
  for (const exclusion of exclusions)
    await deps.events.append({
      type: 'update.excluded',
      taskId: round.taskId,
      roundId: round.roundId,
      device: exclusion.devicePseudonym,
      blobDigest: exclusion.blobDigest,
      reason: exclusion.reason,
      message: exclusion.message,
    });
}
