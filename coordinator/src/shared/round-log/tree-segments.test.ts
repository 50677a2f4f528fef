import { join } from 'node:path';
import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  StoredMerkleTree,
  consistencyPath,
  consistencyProof,
  fromHex,
  inclusionPath,
  inclusionProof,
  keyPairFromSeed,
  merkleLeafHash,
  subtreeFromNodes,
  toHex,
  utf8,
  type MerkleNodeId,
} from '@flotilla/protocol';
import { testRedisUrl, uniquePrefix } from '../../../../test-support/redis.js';
import { tempDirs } from '../../../../test-support/temp-dirs.js';
import { redisOptionsFromUrl } from '../redis-connection.js';
import { CONSISTENCY, ENTRIES, INCLUSION, ROOTS } from '../../../../protocol/test/support/index.js';
import { nodesAtLevel, roundOpened, storeLeaves, testRedisConnections } from '../../../test/support/index.js';
import { roundLogKeys } from './keys.js';
import { TREE_SEGMENT_BYTES, TREE_SEGMENT_NODES, nodeSlot } from './tree-segments.js';
import { readTreeNodes } from './tree-nodes.js';
import { withStoredNodes } from './tree-store.js';
import { openRoundLog } from './writer.js';
import { readRoundLogEntries } from './stream.js';

const connect = testRedisConnections();
const dir = tempDirs('flotilla-tree-segments-')();
let redis: ReturnType<typeof connect>;
beforeAll(() => {
  redis = connect();
});

const proveFromRedis = (prefix: string, index: number, size: number, on = redis) =>
  withStoredNodes({ redis: on, prefix }, (node) =>
    inclusionPath(subtreeFromNodes(node), index, size).map(toHex),
  );
const consistencyFromRedis = (prefix: string, oldSize: number, newSize: number) =>
  withStoredNodes({ redis, prefix }, (node) =>
    consistencyPath(subtreeFromNodes(node), oldSize, newSize).map(toHex),
  );
const rootFromRedis = (prefix: string, size: number) =>
  withStoredNodes({ redis, prefix }, (node) => toHex(subtreeFromNodes(node)(0, size)));

describe('round-log tree in segment strings', () => {
  it('serves the published Certificate Transparency roots, inclusion paths and consistency proofs', async () => {
    const prefix = uniquePrefix('tree-ct');
    // Read on a connection set up as the coordinator's (auto-pipelining), binary replies intact.
    const coordinatorLike = new Redis({ ...redisOptionsFromUrl(testRedisUrl()), enableAutoPipelining: true });
    onTestFinished(() => coordinatorLike.disconnect());
    await storeLeaves(
      redis,
      prefix,
      ENTRIES.map((entry) => merkleLeafHash(fromHex(entry))),
    );
    for (let size = 1; size <= ENTRIES.length; size++)
      expect(await rootFromRedis(prefix, size), `root of ${size}`).toBe(ROOTS[size - 1]);
    for (const v of INCLUSION)
      expect(
        await proveFromRedis(prefix, v.leaf - 1, v.size, coordinatorLike),
        `leaf ${v.leaf} of ${v.size}`,
      ).toEqual(v.proof);
    for (const v of CONSISTENCY)
      expect(await consistencyFromRedis(prefix, v.size1, v.size2), `${v.size1} -> ${v.size2}`).toEqual(
        v.proof,
      );
    // Eight leaves: 8 + 4 + 2 + 1 nodes, one segment string per level, 32 bytes a node.
    const lengths = await Promise.all(
      [0, 1, 2, 3].map((level) => redis.strlen(nodeSlot(prefix, level, 0).key)),
    );
    expect(lengths).toEqual([256, 128, 64, 32]);
    expect(await redis.exists(roundLogKeys(prefix).oldTreeHash)).toBe(0);
  });

  it('packs 3 blocks and more of leaves into 32 KiB segments, every node and proof equal to the RFC 9162 definitions', async () => {
    const prefix = uniquePrefix('tree-blocks');
    const size = 3 * TREE_SEGMENT_NODES + 5;
    const leaves = Array.from({ length: size }, (_, i) => merkleLeafHash(utf8(`leaf ${i}`)));
    await storeLeaves(redis, prefix, leaves);
    const reference = new StoredMerkleTree();
    for (const leaf of leaves) reference.append(leaf);

    for (let level = 0; nodesAtLevel(size, level) > 0; level++) {
      const count = nodesAtLevel(size, level);
      const ids: MerkleNodeId[] = Array.from({ length: count }, (_, index) => ({ level, index }));
      const stored = await readTreeNodes(redis, prefix, ids);
      expect(
        stored.every((hash, index) => toHex(hash) === toHex(reference.node(level, index))),
        `level ${level}`,
      ).toBe(true);
      const segments = Math.ceil(count / TREE_SEGMENT_NODES);
      const lengths = await Promise.all(
        Array.from({ length: segments }, (_, s) => redis.strlen(roundLogKeys(prefix).treeSegment(level, s))),
      );
      expect(lengths.reduce((sum, n) => sum + n, 0)).toBe(32 * count);
      expect(lengths.slice(0, -1).every((n) => n === 32 * TREE_SEGMENT_NODES)).toBe(true);
    }
    // A full segment is rewritten at its own size: Redis keeps no room for growth in it (a
    // string grown 32 bytes at a time reserves up to twice its length).
    const full = Number(
      await redis.call('MEMORY', 'USAGE', roundLogKeys(prefix).treeSegment(0, 0), 'SAMPLES', '0'),
    );
    expect(full).toBeGreaterThanOrEqual(TREE_SEGMENT_BYTES);
    expect(full).toBeLessThan(TREE_SEGMENT_BYTES + 256);
    for (const [index, treeSize] of [
      [0, size],
      [TREE_SEGMENT_NODES - 1, size],
      [TREE_SEGMENT_NODES, size],
      [2 * TREE_SEGMENT_NODES + 17, size - 3],
      [size - 1, size],
    ] as const)
      expect(await proveFromRedis(prefix, index, treeSize), `leaf ${index} of ${treeSize}`).toEqual(
        inclusionProof(leaves, index, treeSize).map(toHex),
      );
    for (const [oldSize, newSize] of [
      [1, size],
      [TREE_SEGMENT_NODES, TREE_SEGMENT_NODES + 1],
      [TREE_SEGMENT_NODES + 3, size],
      [size - 1, size],
    ] as const)
      expect(await consistencyFromRedis(prefix, oldSize, newSize), `${oldSize} -> ${newSize}`).toEqual(
        consistencyProof(leaves, oldSize, newSize).map(toHex),
      );
  });

  it('names the damaged segment instead of serving a proof', async () => {
    const prefix = uniquePrefix('tree-damaged');
    const leaves = Array.from({ length: 40 }, (_, i) => merkleLeafHash(utf8(`leaf ${i}`)));
    await storeLeaves(redis, prefix, leaves);
    const level0 = nodeSlot(prefix, 0, 0).key;
    const whole = await redis.getBuffer(level0);
    if (!whole) throw new Error('no level-0 segment');

    await redis.set(level0, whole.subarray(0, 100));
    await expect(proveFromRedis(prefix, 1, 40)).rejects.toMatchObject({
      code: 'INTERNAL',
      message: expect.stringContaining(
        `${level0} holds 100 bytes, not a whole number of 32-byte nodes`,
      ) as string,
    });

    await redis.set(level0, whole.subarray(0, 32 * 30));
    await expect(proveFromRedis(prefix, 34, 40)).rejects.toMatchObject({
      code: 'INTERNAL',
      message: expect.stringContaining(`${level0} holds 30 nodes, so not node 0:35 at byte 1120`) as string,
    });
    // Leaves the cut leaves in place still prove, from the nodes that are there.
    expect(await proveFromRedis(prefix, 3, 16)).toEqual(inclusionProof(leaves, 3, 16).map(toHex));
  });

  it('refuses to append onto a damaged segment and writes nothing', async () => {
    const prefix = uniquePrefix('tree-append-damaged');
    const filePath = join(dir, `${prefix}.jsonl`);
    const options = {
      redis: connect(),
      prefix,
      filePath,
      signingKey: keyPairFromSeed(new Uint8Array(32).fill(8)),
      pseudonymSecret: new Uint8Array(32),
    };
    const writer = openRoundLog(options);
    for (let i = 0; i < 5; i++) await writer.append(roundOpened(1, `t${i}`));
    const keys = roundLogKeys(prefix);
    const level0 = nodeSlot(prefix, 0, 0).key;
    await redis.setrange(level0, 32 * 5, Buffer.alloc(32));
    const [head, lines] = [await redis.get(keys.head), await readRoundLogEntries(redis, prefix)];

    // A new writer (no remembered head) builds on Redis's head, and the script finds the segment too long.
    await expect(openRoundLog(options).append(roundOpened(1, 'late'))).rejects.toMatchObject({
      code: 'INTERNAL',
      message: expect.stringContaining(
        `round-log tree segment ${level0} holds 192 bytes where the next node goes at byte 160`,
      ) as string,
    });
    expect(await redis.get(keys.head)).toBe(head);
    expect(await readRoundLogEntries(redis, prefix)).toEqual(lines);
  });
});
