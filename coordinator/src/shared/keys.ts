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
    /** String: JSON { reason, roundId, at } written by the worker when the task must stop (task-stop.ts). */
    taskStop: (taskId: string) => `${p}:task:${taskId}:stop`,
    /** String: JSON { status, reason, at }: the operator's pause/resume/stop/archive (task-control.ts). */
    taskControl: (taskId: string) => `${p}:task:${taskId}:control`,
    /** Sorted set: the norm scale (JSON) of each promoted round's unflagged updates, by round number. */
    normScales: (taskId: string) => `${p}:task:${taskId}:norm-scales`,
    /** Sorted set: the blob digest (JSON) of each promoted round's step, by round number (promoted-step.ts). */
    promotedSteps: (taskId: string) => `${p}:task:${taskId}:promoted-steps`,
    /** Sorted set: round ids rejected since the task's last promotion, scored by round number. */
    rejectionStreak: (taskId: string) => `${p}:task:${taskId}:rejection-streak`,
    /** String: the worker's per-task state JSON (accountant, optimizer blob digest; worker/job/worker-state.ts). */
    workerState: (taskId: string) => `${p}:task:${taskId}:worker-state`,
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
    /**
     * Hash: deviceId -> the code of a final refusal (protocol's FINAL_UPDATE_REFUSALS) of a device
     * with neither an accepted update nor a skip: it counts as answered.
     */
    roundFinalRefusals: (roundId: string) => `${p}:round:${roundId}:final-refusals`,
    /** String: digest of the round's noised candidate (DP rounds), so a retried job reuses it. */
    roundCandidate: (roundId: string) => `${p}:round:${roundId}:candidate`,
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
    /** Sorted set: digest -> epoch ms of its last write or touch (Redis blob store; read by GC). */
    blobIndex: () => `${p}:blob-index`,
    /** String: an upload in progress (Redis blob store), renamed to `blob` once verified; PX. */
    blobTemp: (digest: string, nonce: string) => `${p}:blob-tmp:${digest}:${nonce}`,
    /** Set: digests every enrolled device may read (base models, promoted artifacts). */
    blobFleetReadable: () => `${p}:blob-access:fleet`,
    /** Set: raw deltas auditors may read (tasks whose policy sets `auditorDeltaAccess`). */
    blobAuditorReadable: () => `${p}:blob-access:auditor`,
    /** Set: device ids that uploaded (and so hold) these bytes. */
    blobUploaders: (digest: string) => `${p}:blob-access:uploaders:${digest}`,
    /** Set: digests a device stored in a round (its upload quota); PX. */
    blobQuota: (roundId: string, deviceId: string) => `${p}:blob-quota:${roundId}:${deviceId}`,
    /** String: token of the process sweeping a blob store (blob GC); PX. */
    blobGcLock: (storeId: string) => `${p}:blob-gc:lock:${storeId}`,
    /** String: fencing token of the coordinator that drives the round state machines; PX lease. */
    driverLock: () => `${p}:round-driver:lock`,
    /** String: JSON { token, host, pid } of the lease holder (lets a same-host restart take over a dead holder's lease at once). */
    driverHolder: () => `${p}:round-driver:holder`,
    /** Counter: INCR'd on every lease acquisition; the fencing tokens. */
    driverFence: () => `${p}:round-driver:fence`,
    /** Pub/sub channel: followers ask the driver to look at a round or a task (JSON nudge). */
    driverNudges: () => `${p}:round-driver:nudges`,
    /** Hash: coordinator process id -> epoch ms until which it holds a socket of the device; PX TTL. */
    presence: (deviceId: string) => `${p}:presence:${deviceId}`,
    /** Stream of the socket.io Redis streams adapter (broadcasts between coordinator processes). */
    socketStream: () => `${p}:socket.io`,
    /** Key prefix of socket.io sessions kept for connection-state recovery. */
    socketSessionPrefix: () => `${p}:socket.io:session:`,
    /** Hash { tokens, at }: one device identity's message token bucket, shared by every process; PX TTL. */
    rateLimit: (deviceId: string) => `${p}:rate-limit:${deviceId}`,
    /** Hash: `<pseudonym> <reason>` -> refusals of that device for that reason in the round. */
    roundRefusals: (roundId: string) => `${p}:round:${roundId}:refusals`,
    /** Hash: `<pseudonym> <reason>` -> repeated refusals not yet written to the round log. */
    roundRefusalsPending: (roundId: string) => `${p}:round:${roundId}:refusals-pending`,
    /** Hash: `<pseudonym> <reason>` -> JSON { record, leafHash } of that first refusal's round-log record (answers its repeats). */
    roundRefusalLeaves: (roundId: string) => `${p}:round:${roundId}:refusal-leaves`,
    /** Set: round ids with repeated refusals not yet written to the round log. */
    refusalsPending: () => `${p}:refusals-pending`,
    /** Set: SHA-256 of every session token handed to the device (so revocation can end them); PX TTL. */
    deviceSessions: (deviceId: string) => `${p}:device:${deviceId}:sessions`,
    /** Hash: deviceId -> JSON of its accepted update excluded from the round (revocation), and why. */
    roundExcluded: (roundId: string) => `${p}:round:${roundId}:excluded`,
    /** Pub/sub channel: id of each revoked device, so every coordinator process closes its sockets. */
    devicesRevoked: () => `${p}:device-revoked`,
    /** String: the device id a public key is enrolled under, keyed by SHA-256 of the 32 key bytes. */
    deviceKey: (keyHash: string) => `${p}:device-key:${keyHash}`,
    /** String: set once every enrollment made before the key index existed has been indexed. */
    deviceKeysIndexed: () => `${p}:device-keys-indexed`,
  };
}

export type RedisKeys = ReturnType<typeof redisKeys>;
