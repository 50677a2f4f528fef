import type { Redis } from 'ioredis';
import {
  FlotillaError,
  StoredMerkleTree,
  roundLogLeafHash,
  sameHash,
  type MerkleNodeId,
} from '@flotilla/protocol';
import { parseRawLine, readMirrorLeaves } from './mirror-read.js';
import { PRUNE_BELOW_LEVEL, PRUNE_BLOCK_LEAVES, readStoredNodes } from './tree-segments.js';

// The Merkle tree's nodes wherever they are: in Redis, or, for the span pruned from Redis
// (tree-prune.ts), recomputed from a mirror file's records. The mirror is not trusted: the
// block of records under each kept level-10 node must hash to that node, which a signed tree
// head covers, so a recomputed node is the one Redis held, or the read fails.

/** The 1,024 records under kept node (PRUNE_BELOW_LEVEL, block), as a tree, checked against that node. */
async function blockFromMirror(
  redis: Redis,
  prefix: string,
  block: number,
  mirrorPath: string | undefined,
): Promise<StoredMerkleTree> {
  const first = block * PRUNE_BLOCK_LEAVES;
  const span = `records ${first}-${first + PRUNE_BLOCK_LEAVES - 1}`;
  if (mirrorPath === undefined)
    throw new FlotillaError(
      'NOT_FOUND',
      `the round log's Merkle tree under ${span} is kept in Redis only above level ${PRUNE_BELOW_LEVEL}; a mirror file is needed to prove them`,
    );
  const [kept] = await readStoredNodes(redis, prefix, [{ level: PRUNE_BELOW_LEVEL, index: block }]);
  if (!kept)
    throw new FlotillaError('INTERNAL', `round-log tree node ${PRUNE_BELOW_LEVEL}:${block} is missing`);
  const lines = await readMirrorLeaves(mirrorPath, first, PRUNE_BLOCK_LEAVES);
  const tree = new StoredMerkleTree();
  for (const raw of lines) {
    const line = parseRawLine(raw);
    if ('treeHead' in line) continue;
    if (line.leafIndex !== first + tree.size)
      throw new FlotillaError(
        'CORRUPT_FILE',
        `${mirrorPath} holds record ${line.leafIndex} where record ${first + tree.size} belongs (line ${line.seq})`,
      );
    tree.append(roundLogLeafHash(line));
  }
  if (tree.size !== PRUNE_BLOCK_LEAVES)
    throw new FlotillaError(
      'NOT_FOUND',
      `${mirrorPath} lacks ${span} (it holds ${tree.size} of them), whose Merkle tree nodes below level ${PRUNE_BELOW_LEVEL} were dropped from Redis; the mirror files registered for this log hold them (flotilla audit mirrors)`,
    );
  if (!sameHash(tree.root(), kept))
    throw new FlotillaError(
      'CORRUPT_FILE',
      `${mirrorPath}'s ${span} do not hash to the log's Merkle tree node ${PRUNE_BELOW_LEVEL}:${block}: the file was edited, or is another log's mirror`,
    );
  return tree;
}

/**
 * The nodes `ids`, in one Redis round trip, plus one mirror read per pruned block they fall in.
 * Throws INTERNAL naming the key of a node Redis should hold but does not.
 */
export async function readTreeNodes(
  redis: Redis,
  prefix: string,
  ids: readonly MerkleNodeId[],
  mirrorPath?: string,
): Promise<Uint8Array[]> {
  const stored = await readStoredNodes(redis, prefix, ids);
  const blocks = new Map<number, Promise<StoredMerkleTree>>();
  return Promise.all(
    ids.map(async (id, i) => {
      const hash = stored[i];
      if (hash) return hash;
      // A pruned node: the block of 2^PRUNE_BELOW_LEVEL records it lies in, recomputed once.
      const perBlock = PRUNE_BLOCK_LEAVES / 2 ** id.level;
      const block = Math.floor(id.index / perBlock);
      let tree = blocks.get(block);
      if (tree === undefined) {
        tree = blockFromMirror(redis, prefix, block, mirrorPath);
        blocks.set(block, tree);
      }
      return (await tree).node(id.level, id.index - block * perBlock);
    }),
  );
}
