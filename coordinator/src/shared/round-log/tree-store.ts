import type { Redis } from 'ioredis';
import { z } from 'zod';
import {
  FlotillaError,
  SignedTreeHeadSchema,
  consistencyPath,
  fromHex,
  inclusionPath,
  merkleNodesRead,
  subtreeFromNodes,
  toHex,
  type MerkleNodeId,
  type MerkleNodeLookup,
  type SignedTreeHead,
} from '@flotilla/protocol';
import { roundLogKeys } from './keys.js';
import { readTreeNodes } from './tree-nodes.js';

// The round log's Merkle tree in Redis. The head key holds what an append needs: the next seq,
// the tree's right edge (frontier, ≤ 53 hashes) and the last signed head; every complete subtree
// is kept in segment strings (tree-segments.ts), written by the same script that appends the
// record. Nodes never change once written, so proofs read them outside the append's
// compare-and-set: O(log² n) of them per proof, in one script call.

/** Head format of logs whose tree nodes are (partly) in the old hash: migrated on the next append. */
export const TREE_IN_HASH = 2;
/** Head format of logs whose tree nodes are all in segment strings. */
export const TREE_IN_SEGMENTS = 3;

/**
 * The head key's JSON: where the log stands. `format` must stay its first key (the migration
 * rewrites it in place, tree-migration.ts).
 */
export const LogStateSchema = z.object({
  /** 2: tree nodes in the old hash (tree heads, before segments); 3: in segment strings. */
  format: z.union([z.literal(TREE_IN_HASH), z.literal(TREE_IN_SEGMENTS)]),
  /** Seq of the last line (record or tree head). */
  seq: z.number().int().nonnegative(),
  /** Time of the last line, epoch ms. */
  ts: z.number(),
  /** The key the next tree head must be signed with. */
  keyId: z.string(),
  /** Records (leaves) in the tree. */
  leaves: z.number().int().nonnegative(),
  /** Roots of the complete subtrees of the binary decomposition of `leaves`, largest first, hex. */
  frontier: z.array(z.string()),
  /** The last signed tree head, or null before the first. */
  signed: SignedTreeHeadSchema.nullable(),
  /**
   * Seq of the line holding `signed`: every line up to it is covered by a signed tree head, so
   * the stream may be trimmed up to it (trim.ts). Absent in heads written before trimming.
   */
  signedSeq: z.number().int().nonnegative().optional(),
});
export type LogState = z.infer<typeof LogStateSchema>;

/**
 * Parses the head key. A head without `format` is a log written before tree heads: this version
 * cannot append to it (docs/auditing.md, "Logs written before tree heads").
 */
export function parseLogState(raw: string | null, key: string): LogState | null {
  if (raw === null) return null;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new FlotillaError('INTERNAL', `round-log head ${key} is corrupt`);
  }
  if (typeof json === 'object' && json !== null && !('format' in json))
    throw new FlotillaError(
      'INTERNAL',
      `the round log under ${key} was written before tree heads (format 1): export it with flotilla audit export, then start a new log under another prefix (docs/auditing.md)`,
    );
  const parsed = LogStateSchema.safeParse(json);
  if (!parsed.success) throw new FlotillaError('INTERNAL', `round-log head ${key} is corrupt`);
  return parsed.data;
}

/** Where a log's tree nodes are read: Redis, and for the pruned span a mirror file (tree-nodes.ts). */
export interface TreeStore {
  redis: Redis;
  prefix: string;
  /** This process's JSONL mirror; without it, nodes of the pruned span cannot be read. */
  mirrorPath?: string;
}

/**
 * Runs `compute` over the stored nodes it needs, fetched in one script call; `extra` are nodes
 * not stored yet (made by the append being built).
 */
export async function withStoredNodes<T>(
  store: TreeStore,
  compute: (node: MerkleNodeLookup) => T,
  extra: ReadonlyArray<MerkleNodeId & { hash: Uint8Array }> = [],
): Promise<T> {
  const key = (level: number, index: number) => `${level}:${index}`;
  const known = new Map(extra.map((n) => [key(n.level, n.index), n.hash]));
  const wanted = merkleNodesRead(compute).filter((id) => !known.has(key(id.level, id.index)));
  const hashes = await readTreeNodes(store.redis, store.prefix, wanted, store.mirrorPath);
  wanted.forEach((id, i) => {
    const hash = hashes[i];
    if (hash) known.set(key(id.level, id.index), hash);
  });
  return compute((level, index) => {
    const hash = known.get(key(level, index));
    if (!hash) throw new FlotillaError('INTERNAL', `round-log tree node ${level}:${index} is missing`);
    return hash;
  });
}

/** The consistency proof (hex) from the signed head of `oldSize` records to `newSize`. */
export function consistencyHex(
  store: TreeStore,
  oldSize: number,
  newSize: number,
  extra: ReadonlyArray<MerkleNodeId & { hash: Uint8Array }>,
): Promise<string[]> {
  return withStoredNodes(
    store,
    (node) => consistencyPath(subtreeFromNodes(node), oldSize, newSize).map(toHex),
    extra,
  );
}

/** An inclusion proof against a signed head: what a device checks its record against. */
export interface InclusionProofAnswer {
  leafIndex: number;
  /** Sibling hashes from the leaf up, hex. */
  proof: string[];
  head: SignedTreeHead;
}

/** Reads the last signed head and proves leaf `leafIndex` against it; null when it does not cover the leaf yet. */
export async function proveInclusion(
  store: TreeStore,
  leafIndex: number,
): Promise<InclusionProofAnswer | null> {
  const keys = roundLogKeys(store.prefix);
  const state = parseLogState(await store.redis.get(keys.head), keys.head);
  const head = state?.signed ?? null;
  if (head === null || leafIndex >= head.treeHead.treeSize) return null;
  const size = head.treeHead.treeSize;
  const proof = await withStoredNodes(store, (node) =>
    inclusionPath(subtreeFromNodes(node), leafIndex, size).map(toHex),
  );
  return { leafIndex, proof, head };
}

/** Frontier hashes as bytes. */
export const frontierBytes = (state: LogState | null): Uint8Array[] => (state?.frontier ?? []).map(fromHex);
