import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  consistencyPath,
  consistencyProof,
  inclusionPath,
  inclusionProof,
  keyPairFromSeed,
  roundLogLeafHash,
  subtreeFromNodes,
  toBase64,
  toHex,
  verifyRoundLog,
} from '@flotilla/protocol';
import { uniquePrefix } from '../../../../test-support/redis.js';
import { tempDirs } from '../../../../test-support/temp-dirs.js';
import {
  appendAsFormat2,
  nodesAtLevel,
  rewriteAsOldFormat,
  roundOpened,
  testRedisConnections,
  updateRefused,
  treeOfLog,
} from '../../../test/support/index.js';
import { auditVerifyCommand } from './cli.js';
import { auditMirrorsCommand } from './mirrors-command.js';
import { roundLogKeys } from './keys.js';
import { readRoundLog, readRoundLogEntries } from './stream.js';
import { nodeSlot } from './tree-segments.js';
import { readTreeNodes } from './tree-nodes.js';
import { migrateTreeToSegments } from './tree-migration.js';
import { withStoredNodes } from './tree-store.js';
import { openRoundLog } from './writer.js';

const key = keyPairFromSeed(new Uint8Array(32).fill(6));
const connect = testRedisConnections();
const dir = tempDirs('flotilla-tree-migration-')();
let redis: ReturnType<typeof connect>;
beforeAll(() => {
  redis = connect();
});

const writerOn = (prefix: string) =>
  openRoundLog({
    redis: connect(),
    prefix,
    filePath: join(dir, `${prefix}.jsonl`),
    signingKey: key,
    pseudonymSecret: new Uint8Array(32),
  });

/** A log of `count` refusals after a round opening, appended in flight (heads batch them). */
async function writeLog(prefix: string, count: number, from = 0) {
  const writer = writerOn(prefix);
  if (from === 0) await writer.append(roundOpened(1));
  await Promise.all(Array.from({ length: count }, (_, i) => writer.append(updateRefused(from + i))));
  await writer.flush();
}

const leavesOf = async (prefix: string) => (await readRoundLog(redis, prefix)).map(roundLogLeafHash);
const proofsFromRedis = (prefix: string, indexes: readonly number[], size: number) =>
  withStoredNodes({ redis, prefix }, (node) =>
    indexes.map((index) => inclusionPath(subtreeFromNodes(node), index, size).map(toHex)),
  );
const completeSubtrees = (size: number) => {
  let nodes = 0;
  for (let level = 0; nodesAtLevel(size, level) > 0; level++) nodes += nodesAtLevel(size, level);
  return nodes;
};

/** Every node Redis serves for the log equals the one protocol's tree builds from its records. */
async function expectTreeOfLog(prefix: string) {
  const reference = await treeOfLog(redis, prefix);
  for (let level = 0; nodesAtLevel(reference.size, level) > 0; level++) {
    const ids = Array.from({ length: nodesAtLevel(reference.size, level) }, (_, index) => ({ level, index }));
    const stored = await readTreeNodes(redis, prefix, ids);
    expect(stored.map(toHex), `level ${level}`).toEqual(
      ids.map((id) => toHex(reference.node(level, id.index))),
    );
  }
  return reference.size;
}

describe('moving a format-2 log tree from its hash into segments', () => {
  it('keeps every node and proof of a log appended to by three writers while two processes migrate it', async () => {
    const prefix = uniquePrefix('tree-migrate-busy');
    const keys = roundLogKeys(prefix);
    await writeLog(prefix, 300);
    const old = await rewriteAsOldFormat(redis, prefix);
    const oldSize = old.size;
    expect(await redis.hlen(keys.oldTreeHash)).toBe(completeSubtrees(oldSize));
    expect(await redis.keys(keys.treeSegmentPattern)).toEqual([]);
    const oldLeaves = await leavesOf(prefix);
    const sample = [0, 1, 77, 128, oldSize - 2, oldSize - 1];
    // Served from the hash alone, equal to RFC 9162's definitions over the records' leaves.
    const before = await proofsFromRedis(prefix, sample, oldSize);
    expect(before).toEqual(sample.map((i) => inclusionProof(oldLeaves, i, oldSize).map(toHex)));

    const steps: number[] = [];
    const [migrations] = await Promise.all([
      Promise.all(
        [1, 2].map(() =>
          migrateTreeToSegments({ redis: connect(), prefix, stepNodes: 7, onStep: (n) => steps.push(n) }),
        ),
      ),
      ...[0, 1, 2].map((w) => writeLog(prefix, 100, 1000 * (w + 1))),
    ]);
    expect(migrations.some((m) => m.done)).toBe(true);
    expect(Math.max(...steps)).toBeLessThanOrEqual(7);
    // The writers' appends may have finished first: each writer migrates too, and `flush` waits for it.
    await migrateTreeToSegments({ redis, prefix });

    expect(await redis.exists(keys.oldTreeHash)).toBe(0);
    expect(JSON.parse((await redis.get(keys.head)) ?? '{}')).toMatchObject({ format: 3 });
    const size = await expectTreeOfLog(prefix);
    expect(size).toBe(oldSize + 300);
    expect(await proofsFromRedis(prefix, sample, oldSize)).toEqual(before);
    const leaves = await leavesOf(prefix);
    expect(
      await withStoredNodes({ redis, prefix }, (node) =>
        consistencyPath(subtreeFromNodes(node), oldSize, size).map(toHex),
      ),
    ).toEqual(consistencyProof(leaves, oldSize, size).map(toHex));
    const lines = await readRoundLogEntries(redis, prefix);
    expect(await verifyRoundLog(lines, { trustedKey: toBase64(key.publicKey) })).toMatchObject({
      ok: true,
      problems: [],
    });
    const cli = await auditVerifyCommand({
      file: join(dir, `${prefix}.jsonl`),
      json: true,
      trustedKey: toBase64(key.publicKey),
    });
    expect(JSON.parse(cli.output)).toMatchObject({ ok: true, records: lines.length, problems: [] });
    expect(cli.exitCode).toBe(0);
    // The latest head proves an old leaf with the definitions' path too.
    const proof = await writerOn(prefix).proveInclusion(5);
    expect(proof?.proof).toEqual(inclusionProof(leaves, 5, proof?.head.treeHead.treeSize ?? 0).map(toHex));
  });

  it('is started by the first append of a writer of this version, and done when the writer has flushed', async () => {
    const prefix = uniquePrefix('tree-migrate-auto');
    const keys = roundLogKeys(prefix);
    await writeLog(prefix, 50);
    await rewriteAsOldFormat(redis, prefix);
    expect(await redis.exists(keys.oldTreeHash)).toBe(1);
    const writer = writerOn(prefix);
    await writer.append(roundOpened(1, 'next'));
    await writer.flush();
    expect(await redis.exists(keys.oldTreeHash)).toBe(0);
    expect(JSON.parse((await redis.get(keys.head)) ?? '{}')).toMatchObject({ format: 3, leaves: 52 });
    await expectTreeOfLog(prefix);
  });

  it('keeps the nodes a process of the previous version appends during the move, and finishes once it stops', async () => {
    const prefix = uniquePrefix('tree-migrate-mixed');
    const keys = roundLogKeys(prefix);
    await writeLog(prefix, 200);
    await rewriteAsOldFormat(redis, prefix);
    let oldAppended = 0;
    const oldRedis = connect();
    const oldVersion = async (count: number) => {
      // It appends until the head is format 3, which that version cannot read.
      for (let i = 0; i < count; i++) {
        if (!(await appendAsFormat2(oldRedis, prefix, updateRefused(5000 + oldAppended)))) return;
        oldAppended++;
      }
    };
    // A slow move (a node a step) while the old version appends, then this version's writer joins.
    const migrating = migrateTreeToSegments({
      redis: connect(),
      prefix,
      stepNodes: 1,
      maxPasses: 1000,
    }).catch((error: unknown) => error);
    await oldVersion(40);
    await Promise.all([oldVersion(40), migrating, writeLog(prefix, 50, 9000)]);
    expect(await migrateTreeToSegments({ redis, prefix })).toMatchObject({ done: true });
    // Once the head is format 3, the previous version appends nothing more.
    expect(await appendAsFormat2(oldRedis, prefix, updateRefused(4999))).toBe(false);

    expect(await redis.exists(keys.oldTreeHash)).toBe(0);
    expect(await expectTreeOfLog(prefix)).toBe(201 + oldAppended + 50);
    await writerOn(prefix).signTail();
    const lines = await readRoundLogEntries(redis, prefix);
    expect(await verifyRoundLog(lines, { trustedKey: toBase64(key.publicKey) })).toMatchObject({
      ok: true,
      problems: [],
    });
    const leaves = await leavesOf(prefix);
    const sample = [0, 150, 200, 201, leaves.length - 1];
    expect(await proofsFromRedis(prefix, sample, leaves.length)).toEqual(
      sample.map((i) => inclusionProof(leaves, i, leaves.length).map(toHex)),
    );
  });

  it('resumes a migration killed part-way: both places serve proofs, then the hash drains in bounded steps', async () => {
    const prefix = uniquePrefix('tree-migrate-resume');
    const keys = roundLogKeys(prefix);
    // Past one segment (1023 nodes) at level 0, so the migration fills one and starts the next.
    await writeLog(prefix, 1100);
    const rawBefore = await redis.get(keys.head);
    // The first 20 nodes of each level were moved before the process died.
    const old = await rewriteAsOldFormat(redis, prefix, (_, index) => index < 20);
    let inSegments = 0;
    for (let level = 0; nodesAtLevel(old.size, level) > 0; level++)
      inSegments += Math.min(20, nodesAtLevel(old.size, level));
    const inHash = completeSubtrees(old.size) - inSegments;
    expect(await redis.hlen(keys.oldTreeHash)).toBe(inHash);
    expect((await auditMirrorsCommand({ redis, prefix })).output).toContain(
      `Merkle tree: ${inHash} nodes still in the old hash ${keys.oldTreeHash}, moving into segment strings`,
    );
    const leaves = await leavesOf(prefix);
    const sample = [0, 19, 20, 21, 500, 1022, 1023, 1024, old.size - 1];
    const expected = sample.map((i) => inclusionProof(leaves, i, old.size).map(toHex));
    expect(await proofsFromRedis(prefix, sample, old.size)).toEqual(expected);

    const steps: number[] = [];
    expect(
      await migrateTreeToSegments({ redis, prefix, stepNodes: 16, onStep: (n) => steps.push(n) }),
    ).toEqual({
      moved: inHash,
      done: true,
    });
    expect(Math.max(...steps)).toBe(16);
    expect(steps.reduce((a, b) => a + b, 0)).toBe(inHash);
    expect(await redis.exists(keys.oldTreeHash)).toBe(0);
    expect((await auditMirrorsCommand({ redis, prefix })).output).toContain(
      'Merkle tree: in segment strings, none of it pruned',
    );
    // The head changed in its format digit alone.
    expect(await redis.get(keys.head)).toBe(rawBefore);
    expect(await proofsFromRedis(prefix, sample, old.size)).toEqual(expected);
    await expectTreeOfLog(prefix);
    expect(await redis.strlen(nodeSlot(prefix, 0, 1023).key)).toBe(32 * (old.size - 1023));
    // Once done, a migration finds nothing to do.
    expect(await migrateTreeToSegments({ redis, prefix })).toEqual({ moved: 0, done: true });
  });

  it('stops at a node the hash and a segment disagree on, or one lost from both, naming it', async () => {
    const prefix = uniquePrefix('tree-migrate-conflict');
    const keys = roundLogKeys(prefix);
    await writeLog(prefix, 40);
    await rewriteAsOldFormat(redis, prefix, (level, index) => level === 0 && index < 10);
    // A second copy of node 0:0 with other bytes: one of the two is wrong, and which is not known.
    await redis.hset(keys.oldTreeHash, '0:0', Buffer.alloc(32, 7));
    await expect(migrateTreeToSegments({ redis, prefix })).rejects.toMatchObject({
      code: 'INTERNAL',
      message: expect.stringContaining(
        `stopped at node 0:0 of ${keys.oldTreeHash}: ${nodeSlot(prefix, 0, 0).key} holds other bytes`,
      ) as string,
    });
    expect(await redis.hexists(keys.oldTreeHash, '0:0')).toBe(1);
    expect(JSON.parse((await redis.get(keys.head)) ?? '{}')).toMatchObject({ format: 2 });

    // Node 0:20 lost from both places: the nodes after it at level 0 cannot be placed.
    await redis.hdel(keys.oldTreeHash, '0:0', '0:20');
    await expect(migrateTreeToSegments({ redis, prefix })).rejects.toMatchObject({
      code: 'INTERNAL',
      message: expect.stringMatching(
        /still has 2\d nodes in .* that cannot be moved to segments \(0:2\d/,
      ) as string,
    });
    await expect(withStoredNodes({ redis, prefix }, (node) => node(0, 20))).rejects.toMatchObject({
      code: 'INTERNAL',
      message: expect.stringContaining(
        `${nodeSlot(prefix, 0, 0).key} holds 20 nodes, so not node 0:20`,
      ) as string,
    });
    expect(JSON.parse((await redis.get(keys.head)) ?? '{}')).toMatchObject({ format: 2 });

    await redis.hset(keys.oldTreeHash, '0:21', Buffer.alloc(31));
    await expect(withStoredNodes({ redis, prefix }, (node) => node(0, 21))).rejects.toMatchObject({
      code: 'INTERNAL',
      message: expect.stringContaining(
        `round-log tree node 0:21 in ${keys.oldTreeHash} holds 31 bytes, not 32`,
      ) as string,
    });
  });
});
