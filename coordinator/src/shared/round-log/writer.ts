import type { Redis } from 'ioredis';
import {
  FlotillaError,
  RoundLogEventSchema,
  toBase64,
  type RoundLogEvent,
  type RoundLogRecord,
  type SignedTreeHead,
  type SigningKeyPair,
} from '@flotilla/protocol';
import { roundLogKeys } from './keys.js';
import {
  parseLogState,
  proveInclusion,
  TREE_IN_HASH,
  type InclusionProofAnswer,
  type LogState,
} from './tree-store.js';
import { APPEND_RESULT, runAppendScript } from './append-script.js';
import { buildAppendLines } from './append-lines.js';
import { backgroundTreeMigration } from './tree-migration.js';
import { coalesced } from '../coalesced.js';
import { syncMirror } from './mirror.js';
import { signUnsignedTail } from './tail-head.js';
import { streamTrimmer } from './stream-trimmer.js';
import type { LaggingMirror } from './trim.js';
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
  /**
   * Longest a record waits for a signed tree head while appends keep arriving, ms; default 1000.
   * A head is also signed after every event that is not an update's, and whenever this process
   * has no further append queued, so an idle log is always fully signed.
   */
  treeHeadIntervalMs?: number;
  /** Optimistic-lock retries per append under contention; default 200. */
  maxRetries?: number;
  /** Clock, epoch ms; default Date.now. */
  now?: () => number;
  /**
   * Called when the JSONL mirror could not be brought up to date. The record is durable in Redis
   * and the next append (or `syncMirror`) catches the file up. Default: `process.emitWarning`.
   */
  onMirrorError?: (error: unknown) => void;
  /**
   * Newest lines (records and tree heads) kept in the Redis stream. Older ones are trimmed from
   * it once every registered mirror file holds them and a signed tree head covers them; they are
   * then read from the mirror (trim.ts, docs/reliability.md). 0: never trim. Default 10,000
   * (`DEFAULT_KEEP_LINES`).
   */
  keepLines?: number;
  /**
   * Called (at most once a minute) when a registered mirror has not synced for a minute and is
   * more than `keepLines` lines behind the log, so it alone keeps lines in Redis. Default:
   * `process.emitWarning`.
   */
  onLaggingMirror?: (lagging: LaggingMirror) => void;
}

/** Default of `treeHeadIntervalMs`. */
export const DEFAULT_TREE_HEAD_INTERVAL_MS = 1000;

/** What the log holds for one round so far (kept atomically with every append). */
export interface LoggedRoundCounts {
  /** `update.accepted` records of the round. */
  accepted: number;
  /** `update.refused` records of the round. */
  refused: number;
}

export interface RoundLogWriter {
  /**
   * Appends one event as a record (a leaf of the log's tree); resolves once it is in Redis and
   * (normally) in the file. Its leaf hash is `roundLogLeafHash(record)`.
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
  /**
   * Appends a `key.rotated` record and, with it, a tree head signed by the current key; later
   * heads are signed by `newKey`.
   */
  rotateKey(newKey: SigningKeyPair, reason: string): Promise<RoundLogRecord>;
  /** The last signed tree head, or null before the first. */
  head(): Promise<SignedTreeHead | null>;
  /**
   * Signs a tree head over the records no head covers yet (left by a writer killed between its
   * append and its head); resolves with it, or null when the log is fully signed.
   */
  signTail(): Promise<SignedTreeHead | null>;
  /** The inclusion proof of record `leafIndex` against the last signed head; null until a head covers it. */
  proveInclusion(leafIndex: number): Promise<InclusionProofAnswer | null>;
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

/** Opens the writer; no I/O happens until the first append. */
export function openRoundLog(options: OpenRoundLogOptions): RoundLogWriter {
  const keys = roundLogKeys(options.prefix);
  const treeStore = { redis: options.redis, prefix: options.prefix, mirrorPath: options.filePath };
  const now = options.now ?? Date.now;
  const maxRetries = options.maxRetries ?? 200;
  const headIntervalMs = options.treeHeadIntervalMs ?? DEFAULT_TREE_HEAD_INTERVAL_MS;
  const onMirrorError =
    options.onMirrorError ??
    ((error: unknown) =>
      process.emitWarning(
        `round-log mirror not updated: ${error instanceof Error ? error.message : String(error)}`,
      ));
  const trimAfterMirroring = streamTrimmer({
    redis: options.redis,
    prefix: options.prefix,
    keepLines: options.keepLines,
    onLaggingMirror: options.onLaggingMirror,
    onError: onMirrorError,
  });
  let signingKey = options.signingKey;
  const commitmentKey = updateCommitmentKey(options.pseudonymSecret);
  // Appends from this process run one at a time: the compare-and-append then only races the
  // other processes, instead of every in-flight append of this one (which would retry O(n²)).
  let queue: Promise<unknown> = Promise.resolve();
  // Appends queued or running in this process: the last one signs a head, so heads batch
  // records under load and cover every record when the load stops.
  let queued = 0;
  const serialized = <T>(task: () => Promise<T>): Promise<T> => {
    queued++;
    const run = queue.then(task, task).finally(() => queued--);
    queue = run.catch(() => undefined);
    return run;
  };
  // The head as this process last wrote it (text and state), for the next append.
  let lastWritten: { raw: string; state: LogState } | null = null;
  /** Brings the file up to the stream (registering it), then trims the stream now and then. */
  const mirror = async (): Promise<number> => {
    const { redis, prefix, filePath } = options;
    const written = await syncMirror({ redis, prefix, filePath });
    await trimAfterMirroring(written);
    return written;
  };
  // After an append, outside the one-at-a-time queue: appends that finish while the file is being
  // written share the next sync (one lock, one fsync), so the file no longer caps the append rate.
  const mirrorSoon = coalesced(() => mirror().then(() => undefined, onMirrorError));
  // Appends between their Redis write and their mirror sync, for `flush`.
  const mirroring = new Set<Promise<unknown>>();
  /** `append` finishes once its record is in the file too (or the mirror error was reported). */
  const mirrored = (appended: Promise<RoundLogRecord>): Promise<RoundLogRecord> => {
    const done = appended.then(async (record) => {
      await mirrorSoon();
      return record;
    });
    const tracked = done.catch(() => undefined);
    mirroring.add(tracked);
    void tracked.then(() => mirroring.delete(tracked));
    return done;
  };

  // A log whose tree is still in the old hash is moved to segments in the background.
  const treeMigration = backgroundTreeMigration({ redis: options.redis, prefix: options.prefix });

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
      // The head this process wrote last, while no count is needed: no read, no parse. Another
      // writer may have moved it since; then the append is refused and retried on a fresh read.
      const known = countedRound === null ? lastWritten : null;
      const { rawHead, counts } = known
        ? { rawHead: known.raw, counts: { accepted: 0, refused: 0 } }
        : await readHead(countedRound);
      const event = 'build' in build ? RoundLogEventSchema.parse(build.build(counts)) : build;
      const state = known ? known.state : parseLogState(rawHead, keys.head);
      if (state !== null && state.keyId !== keyId)
        throw new FlotillaError(
          'BAD_SIGNATURE',
          `the round log is now signed by ${state.keyId}, not this process's key ${keyId}: reload the coordinator key`,
        );
      const built = await buildAppendLines({
        treeStore,
        state,
        event,
        key,
        now: now(),
        othersQueued: queued > 1,
        headIntervalMs,
      });
      const nextHead = JSON.stringify(built.state);
      const appended = await runAppendScript(
        options.redis,
        options.prefix,
        { raw: rawHead, next: nextHead },
        event,
        built,
      );
      if (appended[0] === APPEND_RESULT.duplicate)
        return loggedRecord(typeof appended[1] === 'number' ? appended[1] : undefined);
      if (appended[0] === APPEND_RESULT.corruptSegment)
        throw new FlotillaError(
          'INTERNAL',
          `round-log tree segment ${String(appended[1])} holds ${appended[2]} bytes where the next node goes at byte ${appended[3]}: the tree in Redis is damaged, nothing was appended`,
        );
      if (state?.format === TREE_IN_HASH) treeMigration.start();
      if (appended[0] === APPEND_RESULT.appended) {
        lastWritten = { raw: nextHead, state: built.state };
        return built.record;
      }
      lastWritten = null;
      // Another writer appended first: back off a little (jittered) and rebuild on the new head;
      // at once when only this process's memory of the head was out of date.
      if (!known) await sleep(Math.random() * Math.min(20, 1 + attempt));
    }
    throw new FlotillaError('INTERNAL', `round-log append lost the race ${maxRetries + 1} times`);
  }

  async function loggedRecord(seq: number | undefined): Promise<RoundLogRecord> {
    const [record] =
      seq === undefined
        ? []
        : await readRoundLog(options.redis, options.prefix, {
            from: seq,
            limit: 1,
            mirrorPath: options.filePath,
          });
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
    head: async () => parseLogState(await options.redis.get(keys.head), keys.head)?.signed ?? null,
    proveInclusion: (leafIndex) => proveInclusion(treeStore, leafIndex),
    signTail() {
      return serialized(async () => {
        const { redis, prefix } = options;
        const head = await signUnsignedTail({
          redis,
          prefix,
          signingKey,
          now,
          maxRetries,
          mirrorPath: options.filePath,
        });
        if (head) await mirror().catch(onMirrorError);
        return head;
      });
    },
    syncMirror: mirror,
    async flush() {
      // Appends started while waiting chain onto `queue`: wait until it stops moving.
      let drained: Promise<unknown>;
      do {
        drained = queue;
        await drained;
        await Promise.all([...mirroring]);
      } while (drained !== queue || mirroring.size > 0);
      await mirrorSoon();
      await treeMigration.settled();
    },
    async loggedAccepted(roundId) {
      const fields = await options.redis.hkeys(keys.round(roundId));
      return new Set(fields.filter((f) => f.startsWith('acc:')).map((f) => f.slice('acc:'.length)));
    },
    appendCounted(roundId, build) {
      return mirrored(serialized(() => appendRecord({ roundId, build }, signingKey)));
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
        return mirrored(
          serialized(() => appendRecord({ ...parsed, deltasRetainedUntil: now() + ttlMs }, signingKey)),
        );
      return mirrored(serialized(() => appendRecord(parsed, signingKey)));
    },
    rotateKey(newKey, reason) {
      return mirrored(serialized(() => rotate(newKey, reason)));
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
