// What one append adds to the round log, built on the head it read: the record, the signed tree
// head that covers it when this append signs one, the tree nodes the record completes, and the
// next head. No I/O but the consistency proof's stored nodes (writer.ts runs the append).
import {
  appendToFrontier,
  buildRoundLogRecord,
  rootFromFrontier,
  roundLogLeafHash,
  signTreeHead,
  toBase64,
  toHex,
  type MerkleNodeId,
  type RoundLogEvent,
  type RoundLogRecord,
  type SigningKeyPair,
  type TreeHeadLine,
} from '@flotilla/protocol';
import {
  consistencyHex,
  frontierBytes,
  TREE_IN_SEGMENTS,
  type LogState,
  type TreeStore,
} from './tree-store.js';

/** Events that end a step of a round (or are not about one update): a head is signed right after them. */
const signsHead = (event: RoundLogEvent): boolean => !event.type.startsWith('update.');

export interface AppendLines {
  record: RoundLogRecord;
  lines: Array<RoundLogRecord | TreeHeadLine>;
  /** The complete subtrees the record closes, to store. */
  nodes: Array<MerkleNodeId & { hash: Uint8Array }>;
  /** The head after the append. */
  state: LogState;
}

/**
 * The record of `event` on top of `state`, and the tree head that covers it when this append
 * signs one: after any event but an update's, when nothing else is queued in this process
 * (`othersQueued` false), or when the last head is `headIntervalMs` old.
 */
export async function buildAppendLines(input: {
  treeStore: TreeStore;
  state: LogState | null;
  event: RoundLogEvent;
  key: SigningKeyPair;
  now: number;
  othersQueued: boolean;
  headIntervalMs: number;
}): Promise<AppendLines> {
  const { state, event, key } = input;
  const record = buildRoundLogRecord({
    seq: state === null ? 0 : state.seq + 1,
    leafIndex: state?.leaves ?? 0,
    // Time never goes backwards along the log, even if another host's clock is behind.
    ts: Math.max(input.now, state?.ts ?? 0),
    event,
  });
  const { frontier, created } = appendToFrontier(
    frontierBytes(state),
    record.leafIndex,
    roundLogLeafHash(record),
  );
  const size = record.leafIndex + 1;
  let signed = state?.signed ?? null;
  let signedSeq = state?.signedSeq;
  const lines: Array<RoundLogRecord | TreeHeadLine> = [record];
  const sign =
    signsHead(event) || !input.othersQueued || record.ts - (signed?.treeHead.ts ?? 0) >= input.headIntervalMs;
  if (sign) {
    const oldSize = signed?.treeHead.treeSize ?? 0;
    const consistency = await consistencyHex(input.treeStore, oldSize, size, created);
    signed = signTreeHead({ treeSize: size, rootHash: rootFromFrontier(frontier), ts: record.ts }, key);
    signedSeq = record.seq + 1;
    lines.push({ seq: signedSeq, ...signed, consistency });
  }
  const next: LogState = {
    format: state?.format ?? TREE_IN_SEGMENTS,
    seq: record.seq + lines.length - 1,
    ts: record.ts,
    keyId: event.type === 'key.rotated' ? event.newKeyId : toBase64(key.publicKey),
    leaves: size,
    frontier: frontier.map(toHex),
    signed,
    ...(signedSeq === undefined ? {} : { signedSeq }),
  };
  return { record, lines, nodes: created, state: next };
}
