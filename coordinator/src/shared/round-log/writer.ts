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
import { pseudonymizeDevice } from './pseudonym.js';

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

export interface RoundLogWriter {
  /** Appends one event as a signed record; resolves once it is in Redis and (normally) in the file. */
  append(event: RoundLogEvent): Promise<RoundLogRecord>;
  /** The device's pseudonym for the log (`dev_<32 hex>`). */
  pseudonymize(deviceId: string): string;
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
 * the stream entry, move the head and pin retained delta digests. The stream write comes first,
 * so a failed XADD leaves the head untouched.
 */
const APPEND_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if (current or '') ~= ARGV[1] then return 0 end
redis.call('XADD', KEYS[2], ARGV[3], 'record', ARGV[4])
redis.call('SET', KEYS[1], ARGV[2])
for i = 6, #ARGV do redis.call('ZADD', KEYS[3], 'GT', ARGV[5], ARGV[i]) end
return 1
`;

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

  async function appendRecord(event: RoundLogEvent, key: SigningKeyPair): Promise<RoundLogRecord> {
    const keyId = toBase64(key.publicKey);
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      const rawHead = await options.redis.get(keys.head);
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
      const retained =
        event.type === 'aggregation' && event.deltasRetainedUntil !== null
          ? [String(event.deltasRetainedUntil), ...event.participants.map((p) => p.blobDigest)]
          : ['0'];
      const appended = await options.redis.eval(
        APPEND_SCRIPT,
        3,
        keys.head,
        keys.stream,
        keys.retained,
        rawHead ?? '',
        JSON.stringify(nextHead),
        streamIdOf(record.seq),
        JSON.stringify(record),
        ...retained,
      );
      if (appended === 1) {
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

  return {
    get keyId() {
      return toBase64(signingKey.publicKey);
    },
    pseudonymize: (deviceId) => pseudonymizeDevice(options.pseudonymSecret, deviceId),
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
    append(event) {
      const parsed = RoundLogEventSchema.parse(event);
      if (parsed.type === 'key.rotated')
        return Promise.reject(
          new FlotillaError('BAD_REQUEST', 'key rotation needs the new key: use rotateKey'),
        );
      const ttlMs = options.retainDeltas?.ttlMs;
      if (parsed.type === 'aggregation' && ttlMs !== undefined)
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
