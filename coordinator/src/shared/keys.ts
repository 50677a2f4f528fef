/** Default Redis key prefix; every Flotilla key starts with `${prefix}:`. */
export const DEFAULT_PREFIX = 'flotilla';

/**
 * The Redis key layout, in one place so the server, the worker and operators' tools agree.
 * Round ids contain a ':' (`<taskId>:<n>`), which is fine inside a key.
 */
export function redisKeys(prefix: string = DEFAULT_PREFIX) {
  const p = prefix;
  return {
    prefix: p,
    /** Hash: publicKey, status ('active' | 'revoked'), enrolledAt, via. */
    device: (deviceId: string) => `${p}:device:${deviceId}`,
    /** Set of every enrolled device id (active or revoked). */
    devices: () => `${p}:devices`,
    /** String (JSON { expiresAt }) under the SHA-256 of a one-time enrollment token; TTL. */
    enrollToken: (tokenHash: string) => `${p}:enroll-token:${tokenHash}`,
    /** String: device id under the SHA-256 of a session token; TTL. */
    session: (tokenHash: string) => `${p}:session:${tokenHash}`,
    /** String: SignedTask JSON. */
    task: (taskId: string) => `${p}:task:${taskId}`,
    /** Sorted set of task ids by creation time. */
    tasks: () => `${p}:tasks`,
    /** String: round id of the task's latest round. */
    currentRound: (taskId: string) => `${p}:task:${taskId}:current-round`,
    /** String: clip norm override written by the worker (adaptive clipping). */
    clipNorm: (taskId: string) => `${p}:task:${taskId}:clip-norm`,
    /** Hash: round state (see server/round-store.ts). */
    round: (roundId: string) => `${p}:round:${roundId}`,
    /** Set: devices waiting to be selected. */
    roundWaiting: (roundId: string) => `${p}:round:${roundId}:waiting`,
    /** Set: devices selected for the round. */
    roundSelected: (roundId: string) => `${p}:round:${roundId}:selected`,
    /** Hash: deviceId -> accepted update record JSON. */
    roundUpdates: (roundId: string) => `${p}:round:${roundId}:updates`,
    /** Hash: deviceId -> skip record JSON. */
    roundSkips: (roundId: string) => `${p}:round:${roundId}:skips`,
    /** String: RoundOutcome JSON stored by the worker. */
    roundOutcome: (roundId: string) => `${p}:round:${roundId}:outcome`,
    /** Pub/sub channel for round outcomes. */
    roundOutcomesChannel: () => `${p}:round-outcomes`,
    /** Pub/sub channel: task id of each newly registered task. */
    tasksChannel: () => `${p}:task-created`,
    /** Hash: version -> SignedManifest JSON. */
    adapterManifests: (taskId: string) => `${p}:task:${taskId}:adapters`,
    /** String: latest promoted version. */
    adapterLatest: (taskId: string) => `${p}:task:${taskId}:adapter-latest`,
    /** String: blob bytes (Redis blob store). */
    blob: (digest: string) => `${p}:blob:${digest}`,
  };
}

export type RedisKeys = ReturnType<typeof redisKeys>;
