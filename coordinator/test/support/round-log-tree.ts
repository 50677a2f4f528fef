import type { Redis } from 'ioredis';
import {
  StoredMerkleTree,
  appendToFrontier,
  buildRoundLogRecord,
  fromHex,
  roundLogLeafHash,
  toHex,
  type MerkleFrontier,
  type RoundLogEvent,
} from '@flotilla/protocol';
import { roundLogKeys } from '../../src/shared/round-log/keys.js';
import { readRoundLog } from '../../src/shared/round-log/stream.js';
import { APPEND_SCRIPT } from '../../src/shared/round-log/append-script.js';
import { nodeSlot } from '../../src/shared/round-log/tree-segments.js';
import { runScript } from '../../src/shared/redis-script.js';

// Round-log trees in Redis for the tree-storage tests: a bare tree stored through the writers'
// own append script, and a log rewritten into the layout of head format 2 (every node a field of
// one hash, as the append script wrote them before segments).

/** Nodes at `level` of a tree of `size` leaves: the complete subtrees there. */
export const nodesAtLevel = (size: number, level: number): number => Math.floor(size / 2 ** level);

/**
 * Stores `leafHashes` as a tree alone (no stream lines) under `prefix`, one append-script call per
 * leaf with the nodes that leaf completes, as a writer stores them. The head key holds a
 * placeholder (`tree-only:<leaves>`), not a log head.
 */
export async function storeLeaves(redis: Redis, prefix: string, leafHashes: readonly Uint8Array[]) {
  const keys = roundLogKeys(prefix);
  let frontier: MerkleFrontier = [];
  const calls: Array<Promise<unknown>> = [];
  for (const [size, leafHash] of leafHashes.entries()) {
    const { frontier: next, created } = appendToFrontier(frontier, size, leafHash);
    frontier = next;
    const slots = created.map((node) => ({ node, slot: nodeSlot(prefix, node.level, node.index) }));
    const call = runScript(
      redis,
      APPEND_SCRIPT,
      5 + slots.length,
      keys.head,
      keys.stream,
      keys.retained,
      keys.round('-'),
      keys.oldTreeHash,
      ...slots.map(({ slot }) => slot.key),
      size === 0 ? '' : `tree-only:${size}`,
      `tree-only:${size + 1}`,
      '',
      '',
      '0',
      '0',
      '0',
      '0',
      '0',
      String(slots.length),
      ...slots.flatMap(({ node, slot }) => [String(slot.offset), slot.field, Buffer.from(node.hash)]),
    );
    calls.push(call);
    // The first call loads the script into Redis; the rest are sent in order without waiting.
    if (size === 0 || calls.length === 1000) await Promise.all(calls.splice(0));
  }
  await Promise.all(calls);
  const head = await redis.get(keys.head);
  if (head !== `tree-only:${leafHashes.length}`) throw new Error(`storeLeaves: the head is ${head}`);
}

/** The log's tree built in memory from its records (protocol's tree, not Redis's). */
export async function treeOfLog(redis: Redis, prefix: string, mirrorPath?: string) {
  const records = await readRoundLog(redis, prefix, mirrorPath === undefined ? {} : { mirrorPath });
  const tree = new StoredMerkleTree();
  for (const record of records) tree.append(roundLogLeafHash(record));
  return tree;
}

/**
 * Rewrites the log under `prefix` as a log of head format 2 holds it: every complete subtree of
 * its records a field `<level>:<index>` (32 raw bytes) of `{prefix}:roundlog:tree`, no segment
 * strings, head `format: 2`. Nodes for which `inSegments` holds stay in their segment instead
 * (each level's first ones only: a migration killed part-way leaves that).
 */
export async function rewriteAsOldFormat(
  redis: Redis,
  prefix: string,
  inSegments: (level: number, index: number) => boolean = () => false,
): Promise<StoredMerkleTree> {
  const keys = roundLogKeys(prefix);
  const tree = await treeOfLog(redis, prefix);
  const segments = await redis.keys(keys.treeSegmentPattern);
  if (segments.length > 0) await redis.del(...segments);
  for (let level = 0; nodesAtLevel(tree.size, level) > 0; level++) {
    const batch = redis.pipeline();
    for (let index = 0; index < nodesAtLevel(tree.size, level); index++) {
      const hash = Buffer.from(tree.node(level, index));
      const slot = nodeSlot(prefix, level, index);
      if (inSegments(level, index)) batch.setrange(slot.key, slot.offset, hash);
      else batch.hset(keys.oldTreeHash, slot.field, hash);
    }
    await batch.exec();
  }
  const head = await redis.get(keys.head);
  if (!head?.startsWith('{"format":3,')) throw new Error(`rewriteAsOldFormat: unexpected head ${head}`);
  await redis.set(keys.head, `{"format":2,${head.slice('{"format":3,'.length)}`);
  return tree;
}

/**
 * The append script of head format 2, as processes of the previous version run it: every node the
 * record completes goes into the hash, whatever the segments hold. KEYS: head, stream, tree hash.
 * ARGV: expected head, next head, stream id, line JSON, node count N, N × (field, hash bytes).
 */
const FORMAT_2_APPEND_SCRIPT = `
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('XADD', KEYS[2], ARGV[3], 'record', ARGV[4])
for i = 6, 5 + 2 * tonumber(ARGV[5]), 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`;

/**
 * Appends `event` as a writer of the previous version would (no tree head): reads the head, which
 * it can only parse as `format: 2`, and stores the record's nodes in the old hash. Resolves with
 * false, having written nothing, once the head is `format: 3` (that version refuses such a head).
 */
export async function appendAsFormat2(redis: Redis, prefix: string, event: RoundLogEvent): Promise<boolean> {
  const keys = roundLogKeys(prefix);
  for (;;) {
    const raw = await redis.get(keys.head);
    if (!raw?.startsWith('{"format":2,')) return false;
    const state = JSON.parse(raw) as { seq: number; ts: number; leaves: number; frontier: string[] };
    const record = buildRoundLogRecord({ seq: state.seq + 1, leafIndex: state.leaves, ts: state.ts, event });
    const { frontier, created } = appendToFrontier(
      state.frontier.map(fromHex),
      state.leaves,
      roundLogLeafHash(record),
    );
    const next = { ...state, seq: record.seq, leaves: state.leaves + 1, frontier: frontier.map(toHex) };
    const stored = await runScript(
      redis,
      FORMAT_2_APPEND_SCRIPT,
      3,
      keys.head,
      keys.stream,
      keys.oldTreeHash,
      raw,
      JSON.stringify(next),
      `0-${record.seq + 1}`,
      JSON.stringify(record),
      String(created.length),
      ...created.flatMap((node) => [`${node.level}:${node.index}`, Buffer.from(node.hash)]),
    );
    if (stored === 1) return true;
  }
}
