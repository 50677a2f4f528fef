import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  consistencyPath,
  consistencyProof,
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
import { roundOpened, testRedisConnections, updateRefused } from '../../../test/support/index.js';
import { auditVerifyCommand } from './cli.js';
import { auditMirrorsCommand } from './mirrors-command.js';
import { roundLogKeys } from './keys.js';
import { readRoundLog, readRoundLogEntries } from './stream.js';
import { PRUNE_BLOCK_LEAVES } from './tree-segments.js';
import { withStoredNodes } from './tree-store.js';
import { openRoundLog } from './writer.js';

const key = keyPairFromSeed(new Uint8Array(32).fill(9));
const connect = testRedisConnections();
const dir = tempDirs('flotilla-tree-prune-')();
let redis: ReturnType<typeof connect>;
beforeAll(() => {
  redis = connect();
});

/**
 * A log of 2,201 records whose stream keeps 50 lines: two blocks of 1,024 records get pruned.
 * `writers` processes append it together, each with its own mirror file (each trims and prunes).
 */
async function prunedLog(label: string, writers = 1) {
  const prefix = uniquePrefix(label);
  const opened = Array.from({ length: writers }, (_, w) => {
    const filePath = join(dir, `${prefix}-${w}.jsonl`);
    const writer = openRoundLog({
      redis: connect(),
      prefix,
      filePath,
      signingKey: key,
      pseudonymSecret: new Uint8Array(32),
      keepLines: 50,
    });
    return { filePath, writer };
  });
  const [first] = opened;
  if (!first) throw new Error('no writer');
  await first.writer.append(roundOpened(1));
  // Every mirror registers before the stream is trimmed (a mirror that joins later lacks the
  // trimmed lines: docs/reliability.md).
  for (const { writer } of opened) await writer.syncMirror();
  const writerOf = (i: number) => opened[i % writers]?.writer ?? first.writer;
  for (let start = 0; start < 2200; start += 200)
    await Promise.all(Array.from({ length: 200 }, (_, i) => writerOf(i).append(updateRefused(start + i))));
  for (const { writer } of opened) await writer.flush();
  return { prefix, filePath: first.filePath, writer: first.writer, opened };
}

describe('pruning the tree under the trimmed stream', () => {
  it('drops levels 0-9 of whole blocks below the trimmed records and proves their leaves from the mirror as RFC 9162 defines', async () => {
    const { prefix, filePath, writer } = await prunedLog('tree-prune');
    const keys = roundLogKeys(prefix);
    expect(await redis.get(keys.prunedLeaves)).toBe(String(2 * PRUNE_BLOCK_LEAVES));
    expect((await auditMirrorsCommand({ redis, prefix })).output).toContain(
      'Merkle tree: in segment strings; levels 0-9 dropped under the first 2048 records',
    );
    // Segments of 1,023 nodes: level 0's first two (leaves 0-2045) are gone, its third stays;
    // level 1's first (leaves 0-2045) is gone; level 9's and level 10's first stay.
    const present = async (level: number, segment: number) => redis.exists(keys.treeSegment(level, segment));
    expect([await present(0, 0), await present(0, 1), await present(0, 2)]).toEqual([0, 0, 1]);
    expect([await present(1, 0), await present(1, 1), await present(9, 0), await present(10, 0)]).toEqual([
      0, 1, 1, 1,
    ]);

    const records = await readRoundLog(redis, prefix, { mirrorPath: filePath });
    expect(records).toHaveLength(2201);
    const leaves = records.map(roundLogLeafHash);
    for (const index of [0, 5, 1023, 1024, 2047, 2048, 2200]) {
      const answer = await writer.proveInclusion(index);
      expect(answer?.proof, `leaf ${index}`).toEqual(
        inclusionProof(leaves, index, answer?.head.treeHead.treeSize ?? 0).map(toHex),
      );
    }
    const store = { redis, prefix, mirrorPath: filePath };
    for (const oldSize of [1, 1000, 1025, 2047])
      expect(
        await withStoredNodes(store, (node) =>
          consistencyPath(subtreeFromNodes(node), oldSize, 2201).map(toHex),
        ),
        `${oldSize} -> 2201`,
      ).toEqual(consistencyProof(leaves, oldSize, 2201).map(toHex));

    // The writer keeps appending (and signing heads with consistency proofs) over the pruned tree.
    for (let i = 0; i < 5; i++) await writer.append(roundOpened(1, `more-${i}`));
    await writer.flush();
    const lines = await readRoundLogEntries(redis, prefix, { mirrorPath: filePath });
    expect(await verifyRoundLog(lines, { trustedKey: toBase64(key.publicKey) })).toMatchObject({
      ok: true,
      problems: [],
    });
    const cli = await auditVerifyCommand({ file: filePath, json: true, trustedKey: toBase64(key.publicKey) });
    expect(JSON.parse(cli.output)).toMatchObject({ ok: true, records: lines.length, problems: [] });
  });

  it('refuses a proof of a pruned leaf from an edited, cut or absent mirror, naming it', async () => {
    const { prefix, filePath } = await prunedLog('tree-prune-bad');
    const prove = (mirrorPath: string | undefined, index: number) =>
      withStoredNodes({ redis, prefix, ...(mirrorPath === undefined ? {} : { mirrorPath }) }, (node) =>
        subtreeFromNodes(node)(index, index + 1),
      );
    await expect(prove(undefined, 5)).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringContaining('records 0-1023 is kept in Redis only above level 10') as string,
    });

    const lines = readFileSync(filePath, 'utf8').split('\n');
    const edited = join(dir, `${prefix}-edited.jsonl`);
    writeFileSync(
      edited,
      lines
        .map((line) => (line.includes('"leafIndex":7,') ? line.replace('norm 8 > 1', 'norm 9 > 1') : line))
        .join('\n'),
    );
    await expect(prove(edited, 5)).rejects.toMatchObject({
      code: 'CORRUPT_FILE',
      message: expect.stringContaining(
        `${edited}'s records 0-1023 do not hash to the log's Merkle tree node 10:0`,
      ) as string,
    });
    // The other block is untouched by the edit and still proves.
    expect(toHex(await prove(edited, 1500))).toBe(toHex(await prove(filePath, 1500)));

    const cut = join(dir, `${prefix}-cut.jsonl`);
    writeFileSync(cut, lines.slice(0, 1200).join('\n') + '\n');
    await expect(prove(cut, 1500)).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringContaining(`${cut} lacks records 1024-2047`) as string,
    });
  });

  it('prunes once while two writers with their own mirrors trim together, and both prove pruned leaves', async () => {
    const { prefix, opened } = await prunedLog('tree-prune-two', 2);
    expect(await redis.get(roundLogKeys(prefix).prunedLeaves)).toBe(String(2 * PRUNE_BLOCK_LEAVES));
    const [mirrorA, mirrorB] = opened;
    if (!mirrorA || !mirrorB) throw new Error('two writers expected');
    const leaves = (await readRoundLog(redis, prefix, { mirrorPath: mirrorB.filePath })).map(
      roundLogLeafHash,
    );
    expect(leaves).toHaveLength(2201);
    for (const { writer } of opened)
      for (const index of [3, 1030, 2100]) {
        const answer = await writer.proveInclusion(index);
        expect(answer?.proof, `leaf ${index}`).toEqual(
          inclusionProof(leaves, index, answer?.head.treeHead.treeSize ?? 0).map(toHex),
        );
      }
  });
});
