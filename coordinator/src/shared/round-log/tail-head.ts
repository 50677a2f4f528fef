import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  FlotillaError,
  rootFromFrontier,
  signTreeHead,
  toBase64,
  type SignedTreeHead,
  type SigningKeyPair,
  type TreeHeadLine,
} from '@flotilla/protocol';
import { roundLogKeys, streamIdOf } from './keys.js';
import { consistencyHex, frontierBytes, parseLogState, type LogState } from './tree-store.js';
import { runScript } from '../redis-script.js';

// A writer signs a tree head with the last of its queued appends, so records appended while more
// were queued wait for it. A writer killed in between leaves them covered by no head (audit
// verify: UNSIGNED) until the next append anywhere. A process that writes the log therefore
// signs such a tail when it starts, and when it takes over the round driver's lease.

/**
 * Compare-and-append of a tree head alone: only if the log's head is still the one the line was
 * built on, add the line to the stream and move the head.
 *
 * KEYS: head, stream. ARGV: expected head, next head, stream id, line JSON.
 */
const SIGN_TAIL_SCRIPT = `
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('XADD', KEYS[2], ARGV[3], 'record', ARGV[4])
redis.call('SET', KEYS[1], ARGV[2])
return 1
`;

export interface SignTailOptions {
  redis: Redis;
  prefix: string;
  /** The log's current signer. */
  signingKey: SigningKeyPair;
  /** Clock, epoch ms. */
  now: () => number;
  /** Compare-and-set retries under contention. */
  maxRetries: number;
  /** This process's mirror, for tree nodes of the pruned span (tree-nodes.ts). */
  mirrorPath?: string;
}

/** The head line over every record of `state`, when some are not covered by its last head; else null. */
async function tailHead(
  options: SignTailOptions,
  state: LogState | null,
): Promise<{ line: TreeHeadLine; next: LogState } | null> {
  const signedSize = state?.signed?.treeHead.treeSize ?? 0;
  if (state === null || state.leaves === signedSize) return null;
  const keyId = toBase64(options.signingKey.publicKey);
  if (state.keyId !== keyId)
    throw new FlotillaError(
      'BAD_SIGNATURE',
      `the round log is now signed by ${state.keyId}, not this process's key ${keyId}: reload the coordinator key`,
    );
  const ts = Math.max(options.now(), state.ts);
  const consistency = await consistencyHex(options, signedSize, state.leaves, []);
  const signed = signTreeHead(
    { treeSize: state.leaves, rootHash: rootFromFrontier(frontierBytes(state)), ts },
    options.signingKey,
  );
  const line: TreeHeadLine = { seq: state.seq + 1, ...signed, consistency };
  return { line, next: { ...state, seq: line.seq, ts, signed, signedSeq: line.seq } };
}

/**
 * Signs a tree head over the records no head covers yet (none: nothing is written). Resolves
 * with that head, or null when the log was fully signed (or empty).
 */
export async function signUnsignedTail(options: SignTailOptions): Promise<SignedTreeHead | null> {
  const keys = roundLogKeys(options.prefix);
  for (let attempt = 0; attempt <= options.maxRetries; attempt++) {
    const rawHead = await options.redis.get(keys.head);
    const built = await tailHead(options, parseLogState(rawHead, keys.head));
    if (built === null) return null;
    const { line, next } = built;
    const stored = await runScript(
      options.redis,
      SIGN_TAIL_SCRIPT,
      2,
      keys.head,
      keys.stream,
      rawHead ?? '',
      JSON.stringify(next),
      streamIdOf(line.seq),
      JSON.stringify(line),
    );
    if (stored === 1) return { treeHead: line.treeHead, signature: line.signature };
    // Another writer appended first (its head may cover the tail already): look again.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(20, 1 + attempt)));
  }
  throw new FlotillaError(
    'INTERNAL',
    `signing the round log's tail lost the race ${options.maxRetries + 1} times`,
  );
}

/**
 * At a writer's start (or lease takeover): signs the unsigned tail a crashed writer left, and
 * logs it. A failure is logged, never thrown: the next append signs the tail too.
 */
export async function signTailOnStart(
  writer: { signTail(): Promise<SignedTreeHead | null> },
  logger: Pick<Logger, 'info' | 'warn'>,
): Promise<void> {
  try {
    const head = await writer.signTail();
    if (head) logger.info({ treeSize: head.treeHead.treeSize }, "signed the round log's unsigned tail");
  } catch (error) {
    logger.warn({ err: error }, "the round log's unsigned tail was not signed");
  }
}
