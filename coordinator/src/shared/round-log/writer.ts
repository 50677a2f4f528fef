import type { Redis } from 'ioredis';
import { z } from 'zod';
import {
  FlotillaError,
  ROUND_LOG_GENESIS_HASH,
  RoundLogEventSchema,
  buildRoundLogRecord,
  toBase64,
  type RoundLogEvent,
  type RoundLogRecord,
  type SigningKeyPair,
} from '@flotilla/protocol';
import { roundLogKeys, streamIdOf } from './keys.js';
import { syncMirror } from './mirror.js';
import { readRoundLog } from './stream.js';
import { pseudonymizeDevice } from './pseudonym.js';
import { commitUpdate, updateCommitmentKey } from './update-commitment.js';

export interface OpenRoundLogOptions {
  /** Any connection; appends are compare-and-set scripts, so it may be shared. */
  redis: Redis;
  /** Redis key prefix (default in Flotilla: `flotilla`). */
  prefix: string;
  /** JSONL mirror, e.g. `defaultRoundLogPath(stateDir)`. */
  filePath: string;
  /** The coordinator key; must be the chain's current signer (see `rotateKey`). */
  signingKey: SigningKeyPair;
  /** Secret for device pseudonyms (`loadOrCreatePseudonymSecret`). */
  pseudonymSecret: Uint8Array;
  /**
   * Keep the participants' delta blobs so auditors can recompute aggregates: aggregation records
   * get `deltasRetainedUntil = ts + ttlMs` and the digests are listed in `{prefix}:roundlog:retained`
   * (blob garbage collection must spare them until then; `retainedDeltaDigests`). Default: not retained.
   */
  retainDeltas?: { ttlMs: number };
  /** Optimistic-lock retries per append under contention; default 200. */
  maxRetries?: number;
  /** Clock, epoch ms; default Date.now. */
  now?: () => number;
  /**
   * Called when the JSONL mirror could not be brought up to date. The record is durable in Redis
   * and the next append (or `syncMirror`) catches the file up. Default: `process.emitWarning`.
   */
  onMirrorError?: (error: unknown) => void;
}

const HeadSchema = z.object({
  seq: z.number().int().nonnegative(),
  hash: z.string(),
  ts: z.number(),
  keyId: z.string(),
});
type Head = z.infer<typeof HeadSchema>;

/** What the log holds for one round so far (kept atomically with every append). */
export interface LoggedRoundCounts {
  /** `update.accepted` records of the round. */
  accepted: number;
  /** `update.refused` records of the round. */
  refused: number;
}

export interface RoundLogWriter {
  /**
   * Appends one event as a signed record; resolves once it is in Redis and (normally) in the file.
   * A device has one `update.accepted` per round: appending it again (the round's closer logging
   * an acceptance whose own process had not) adds nothing and resolves to the record in the log.
   */
  append(event: RoundLogEvent): Promise<RoundLogRecord>;
  /**
   * Appends the event `build` makes from what the log holds for `roundId` right before it (atomic
   * with the append: no record of the round can slip in between). How `round.closed` counts.
   */
  appendCounted(
    roundId: string,
    build: (logged: LoggedRoundCounts) => RoundLogEvent,
  ): Promise<RoundLogRecord>;
  /** Pseudonyms of the devices whose `update.accepted` for `roundId` is in the log. */
  loggedAccepted(roundId: string): Promise<Set<string>>;
  /** The device's pseudonym for the log (`dev_<32 hex>`). */
  pseudonymize(deviceId: string): string;
  /** How a DP round's log names an update: its commitment (`commitUpdate`). */
  commitUpdate(roundId: string, blobDigest: string): string;
  /** Appends a `key.rotated` record signed by the current key; later appends are signed by `newKey`. */
  rotateKey(newKey: SigningKeyPair, reason: string): Promise<RoundLogRecord>;
  /** The last record's seq, hash, time and signer, or null for an empty log. */
  head(): Promise<Head | null>;
  /** Brings the JSONL file up to the stream; returns lines written. */
  syncMirror(): Promise<number>;
  /**
   * Resolves once every append this writer started has finished (in Redis, mirror write done)
   * and the JSONL file has been brought up to the stream: after it, nothing of this writer
   * touches the file. A mirror failure goes to `onMirrorError`, as for appends.
   */
  flush(): Promise<void>;
  /** base64 public key this writer signs with. */
  readonly keyId: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Compare-and-append, atomically in Redis: only if the head is still the one the record was built
 * on (optimistic concurrency between the server and the worker, on any shared connection), add
 * the stream entry, move the head, count the record in its round's hash and pin retained delta
 * digests. The stream write comes first, so a failed XADD leaves the head untouched. An
 * `update.accepted` the round's hash already holds is not appended again: `{2, seq}` names it.
 *
 * KEYS: head, stream, retained, round hash. ARGV: expected head, next head, stream id, record
 * JSON, count field ('' | accepted | refused), once field ('' | acc:<pseudonym>), seq, round hash
 * TTL (ms), retained until, count increment, retained digests...
 */
const APPEND_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if (current or '') ~= ARGV[1] then return {0} end
if ARGV[6] ~= '' then
  local existing = redis.call('HGET', KEYS[4], ARGV[6])
  if existing then return {2, tonumber(existing)} end
end
redis.call('XADD', KEYS[2], ARGV[3], 'record', ARGV[4])
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[5] ~= '' then
  redis.call('HINCRBY', KEYS[4], ARGV[5], tonumber(ARGV[10]))
  if ARGV[6] ~= '' then redis.call('HSET', KEYS[4], ARGV[6], ARGV[7]) end
  redis.call('PEXPIRE', KEYS[4], ARGV[8])
end
for i = 11, #ARGV do redis.call('ZADD', KEYS[3], 'GT', ARGV[9], ARGV[i]) end
return {1}
`;

/**
 * How long a round's counts stay in Redis after its last counted record: 30 days (its closer
 * reads them when reporting ends, normally minutes later).
 */
const ROUND_COUNTS_TTL_MS = 30 * 24 * 60 * 60 * 1000;

/** How an event counts in its round's hash: [count field, increment, once field]. */
function countFields(event: RoundLogEvent): [string, number, string] {
  if (event.type === 'update.accepted') return ['accepted', 1, `acc:${event.device}`];
  if (event.type === 'update.refused') return ['refused', 1, ''];
  // An accepted update taken out before the round's end (a revoked device) no longer counts.
  if (event.type === 'update.excluded') return ['accepted', -1, ''];
  // Repeated refusals counted rather than logged one by one add to the same total.
  if (event.type === 'update.refusals')
    return ['refused', event.counts.reduce((sum, c) => sum + c.count, 0), ''];
  return ['', 0, ''];
}

function parseHead(raw: string | null, key: string): Head | null {
  if (raw === null) return null;
  const parsed = HeadSchema.safeParse(JSON.parse(raw) as unknown);
  if (!parsed.success) throw new FlotillaError('INTERNAL', `round-log head ${key} is corrupt`);
  return parsed.data;
}

/** Opens the writer; no I/O happens until the first append. */
export function openRoundLog(options: OpenRoundLogOptions): RoundLogWriter {
  const keys = roundLogKeys(options.prefix);
  const now = options.now ?? Date.now;
  const maxRetries = options.maxRetries ?? 200;
  const onMirrorError =
    options.onMirrorError ??
    ((error: unknown) =>
      process.emitWarning(
        `round-log mirror not updated: ${error instanceof Error ? error.message : String(error)}`,
      ));
  let signingKey = options.signingKey;
  const commitmentKey = updateCommitmentKey(options.pseudonymSecret);
  // Appends from this process run one at a time: the compare-and-append then only races the
  // other processes, instead of every in-flight append of this one (which would retry O(n²)).
  let queue: Promise<unknown> = Promise.resolve();
  const serialized = <T>(task: () => Promise<T>): Promise<T> => {
    const run = queue.then(task, task);
    queue = run.catch(() => undefined);
    return run;
  };
  const mirror = () =>
    syncMirror({ redis: options.redis, prefix: options.prefix, filePath: options.filePath });

  /** The head, and the counts of `roundId` as of that head (one MULTI, so they agree). */
  async function readHead(
    roundId: string | null,
  ): Promise<{ rawHead: string | null; counts: LoggedRoundCounts }> {
    if (roundId === null)
      return { rawHead: await options.redis.get(keys.head), counts: { accepted: 0, refused: 0 } };
    const replies = await options.redis
      .multi()
      .get(keys.head)
      .hmget(keys.round(roundId), 'accepted', 'refused')
      .exec();
    const [headReply, countsReply] = replies ?? [];
    if (!headReply || !countsReply || headReply[0] || countsReply[0])
      throw new FlotillaError('INTERNAL', 'could not read the round-log head and round counts');
    const [accepted, refused] = countsReply[1] as Array<string | null>;
    return {
      rawHead: headReply[1] as string | null,
      counts: { accepted: Number(accepted ?? 0), refused: Number(refused ?? 0) },
    };
  }

  async function appendRecord(
    build: RoundLogEvent | { roundId: string; build: (logged: LoggedRoundCounts) => RoundLogEvent },
    key: SigningKeyPair,
  ): Promise<RoundLogRecord> {
    const keyId = toBase64(key.publicKey);
    const countedRound = 'build' in build ? build.roundId : null;
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      const { rawHead, counts } = await readHead(countedRound);
      const event = 'build' in build ? RoundLogEventSchema.parse(build.build(counts)) : build;
      const head = parseHead(rawHead, keys.head);
      if (head !== null && head.keyId !== keyId)
        throw new FlotillaError(
          'BAD_SIGNATURE',
          `the round log is now signed by ${head.keyId}, not this process's key ${keyId}: reload the coordinator key`,
        );
      // Time never goes backwards along the chain, even if another host's clock is behind.
      const record = buildRoundLogRecord({
        seq: head === null ? 0 : head.seq + 1,
        ts: Math.max(now(), head?.ts ?? 0),
        prevHash: head?.hash ?? ROUND_LOG_GENESIS_HASH,
        event,
        signingKey: key,
      });
      const nextHead: Head = {
        seq: record.seq,
        hash: record.hash,
        ts: record.ts,
        keyId: event.type === 'key.rotated' ? event.newKeyId : keyId,
      };
      const [retainedUntil, retainedDigests] =
        event.type === 'aggregation' && event.deltasRetainedUntil !== null
          ? [String(event.deltasRetainedUntil), event.participants.map((p) => p.blobDigest)]
          : ['0', []];
      const [countField, increment, onceField] = countFields(event);
      const roundKey = keys.round('roundId' in event ? event.roundId : '-');
      const appended = (await options.redis.eval(
        APPEND_SCRIPT,
        4,
        keys.head,
        keys.stream,
        keys.retained,
        roundKey,
        rawHead ?? '',
        JSON.stringify(nextHead),
        streamIdOf(record.seq),
        JSON.stringify(record),
        countField,
        onceField,
        String(record.seq),
        String(ROUND_COUNTS_TTL_MS),
        retainedUntil,
        String(increment),
        ...retainedDigests,
      )) as [number, number?];
      if (appended[0] === 2) return loggedRecord(appended[1]);
      if (appended[0] === 1) {
        try {
          await mirror();
        } catch (error) {
          onMirrorError(error);
        }
        return record;
      }
      // Another writer appended first: back off a little (jittered) and rebuild on the new head.
      await sleep(Math.random() * Math.min(20, 1 + attempt));
    }
    throw new FlotillaError('INTERNAL', `round-log append lost the race ${maxRetries + 1} times`);
  }

  async function loggedRecord(seq: number | undefined): Promise<RoundLogRecord> {
    const [record] =
      seq === undefined ? [] : await readRoundLog(options.redis, options.prefix, { from: seq, limit: 1 });
    if (!record || record.seq !== seq)
      throw new FlotillaError('INTERNAL', `round-log record ${seq} is missing`);
    return record;
  }

  return {
    get keyId() {
      return toBase64(signingKey.publicKey);
    },
    pseudonymize: (deviceId) => pseudonymizeDevice(options.pseudonymSecret, deviceId),
    commitUpdate: (roundId, blobDigest) => commitUpdate(commitmentKey, roundId, blobDigest),
    head: async () => parseHead(await options.redis.get(keys.head), keys.head),
    syncMirror: mirror,
    async flush() {
      // Appends started while waiting chain onto `queue`: wait until it stops moving.
      let drained: Promise<unknown>;
      do {
        drained = queue;
        await drained;
      } while (drained !== queue);
      await mirror().catch(onMirrorError);
    },
    async loggedAccepted(roundId) {
      const fields = await options.redis.hkeys(keys.round(roundId));
      return new Set(fields.filter((f) => f.startsWith('acc:')).map((f) => f.slice('acc:'.length)));
    },
    appendCounted(roundId, build) {
      return serialized(() => appendRecord({ roundId, build }, signingKey));
    },
    append(event) {
      const parsed = RoundLogEventSchema.parse(event);
      if (parsed.type === 'key.rotated')
        return Promise.reject(
          new FlotillaError('BAD_REQUEST', 'key rotation needs the new key: use rotateKey'),
        );
      const ttlMs = options.retainDeltas?.ttlMs;
      // A noised aggregate cannot be recomputed, and a DP round's participants are named by
      // commitments: its deltas are not kept for auditors.
      if (parsed.type === 'aggregation' && ttlMs !== undefined && parsed.noiseMultiplier === 0)
        return serialized(() => appendRecord({ ...parsed, deltasRetainedUntil: now() + ttlMs }, signingKey));
      return serialized(() => appendRecord(parsed, signingKey));
    },
    rotateKey(newKey, reason) {
      return serialized(() => rotate(newKey, reason));
    },
  };

  async function rotate(newKey: SigningKeyPair, reason: string): Promise<RoundLogRecord> {
    const event: RoundLogEvent = {
      type: 'key.rotated',
      previousKeyId: toBase64(signingKey.publicKey),
      newKeyId: toBase64(newKey.publicKey),
      reason,
    };
    const record = await appendRecord(event, signingKey);
    signingKey = newKey;
    return record;
  }
}
