#!/usr/bin/env node
// Redis memory of the round log with and without stream trimming, side by side in one run:
// two private redis-servers, the same N `update.accepted` appends to each (one writer keeping
// the default 10,000 lines, one never trimming), then INFO memory and MEMORY USAGE of the keys
// (the trimming writer also prunes the tree's low levels under the trimmed records).
// Then the Merkle tree's storage, old against new for the same appends: the segment strings the
// appends wrote, the same nodes as the hash of head format 2 (a field per node, as the append
// script wrote them before segments), and the segments the migration makes from that hash.
//   node scripts/round-log-memory.mjs [appends, default 20000]
import { register } from 'node:module';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tsImport } from 'tsx/esm/api';

register(
  'data:text/javascript,export function resolve(specifier, context, next) {' +
    ' return next(specifier, { ...context, conditions: [...context.conditions, "@flotilla/source"] }); }',
);
const { Redis } = await import('ioredis');
const shared = await tsImport('../coordinator/src/shared/index.ts', import.meta.url);
const { keyPairFromSeed } = await tsImport('../protocol/src/index.ts', import.meta.url);

const appends = Number(process.argv[2] ?? 20_000);
const dir = mkdtempSync(join(tmpdir(), 'flotilla-log-memory-'));
const prefix = 'flotilla';
const key = keyPairFromSeed(new Uint8Array(32).fill(1));
const hex = (n) => n.toString(16).padStart(64, '0');

async function setUp(label, keepLines) {
  const server = await shared.startEmbeddedRedis({ dataDir: join(dir, `${label}-redis`) });
  const redis = new Redis(shared.redisOptionsFromUrl(server.url));
  const filePath = join(dir, `${label}.jsonl`);
  const writer = shared.openRoundLog({
    redis,
    prefix,
    filePath,
    signingKey: key,
    pseudonymSecret: new Uint8Array(32),
    keepLines,
  });
  return { label, keepLines, server, redis, filePath, writer };
}

async function run(side) {
  const { writer } = side;
  await writer.append({
    type: 'round.opened',
    taskId: 'demo',
    roundId: 'demo:1',
    goalCount: appends,
    minReports: 1,
    clipNorm: 1,
    parentVersion: 0,
    deadline: 1,
    dp: null,
  });
  // In flight in batches, as a busy coordinator has them: heads batch records under load.
  for (let start = 0; start < appends; start += 500) {
    const batch = [];
    for (let i = start; i < Math.min(appends, start + 500); i++)
      batch.push(
        writer.append({
          type: 'update.accepted',
          taskId: 'demo',
          roundId: 'demo:1',
          device: writer.pseudonymize(`device-${i}`),
          blobDigest: hex(i + 1),
          norm: 0.93,
          clipBound: 1,
          clipped: false,
          bytes: 400_160,
          numExamples: 64,
        }),
      );
    await Promise.all(batch);
  }
  await writer.flush();
}

async function measure(side) {
  const keys = shared.roundLogKeys(prefix);
  const info = await side.redis.info('memory');
  const usedMemory = Number(/used_memory:(\d+)/.exec(info)?.[1]);
  const usage = (k) => side.redis.call('MEMORY', 'USAGE', k, 'SAMPLES', '0').then((n) => Number(n ?? 0));
  return {
    side: side.label,
    keepLines: side.keepLines,
    streamLines: await side.redis.xlen(keys.stream),
    streamBytes: await usage(keys.stream),
    treeBytes: (await segmentBytes(side.redis)).bytes,
    usedMemory,
    mirrorBytes: statSync(side.filePath).size,
  };
}

/** Sum of MEMORY USAGE (exact: SAMPLES 0) over the tree's segment strings. */
async function segmentBytes(redis) {
  const keys = await redis.keys(shared.roundLogKeys(prefix).treeSegmentPattern);
  let bytes = 0;
  for (const k of keys) bytes += Number((await redis.call('MEMORY', 'USAGE', k, 'SAMPLES', '0')) ?? 0);
  return { bytes, keys };
}

/** Old hash against new segments for the tree `side`'s appends wrote, then the migration between them. */
async function measureTree(side) {
  const { redis } = side;
  const keys = shared.roundLogKeys(prefix);
  const leaves = JSON.parse(await redis.get(keys.head)).leaves;
  const written = await segmentBytes(redis);
  // The same nodes as head format 2 kept them: one hash field `<level>:<index>` per node.
  let nodes = 0;
  for (const k of written.keys) {
    const [level, segment] = k
      .slice(keys.treeSegmentPattern.length - 1)
      .split(':')
      .map(Number);
    const bytes = await redis.getBuffer(k);
    const batch = redis.pipeline();
    for (let j = 0; j < bytes.length / 32; j++, nodes++)
      batch.hset(
        keys.oldTreeHash,
        `${level}:${segment * shared.TREE_SEGMENT_NODES + j}`,
        bytes.subarray(32 * j, 32 * j + 32),
      );
    await batch.exec();
  }
  await redis.del(...written.keys);
  const head = await redis.get(keys.head);
  await redis.set(keys.head, head.replace('{"format":3,', '{"format":2,'));
  const hashBytes = Number(await redis.call('MEMORY', 'USAGE', keys.oldTreeHash, 'SAMPLES', '0'));
  const started = performance.now();
  const migration = await shared.migrateTreeToSegments({ redis, prefix });
  const migrationMs = performance.now() - started;
  const migrated = await segmentBytes(redis);
  return {
    leaves,
    nodes,
    treeBytesOldHash: hashBytes,
    treeBytesSegments: written.bytes,
    treeBytesMigrated: migrated.bytes,
    bytesPerRecordOldHash: +(hashBytes / leaves).toFixed(1),
    bytesPerRecordSegments: +(written.bytes / leaves).toFixed(1),
    bytesPerRecordMigrated: +(migrated.bytes / leaves).toFixed(1),
    migrationMoved: migration.moved,
    migrationDone: migration.done,
    migrationMs: Math.round(migrationMs),
    oldHashLeft: await redis.exists(keys.oldTreeHash),
  };
}

const sides = [await setUp('trimmed', shared.DEFAULT_KEEP_LINES), await setUp('untrimmed', 0)];
try {
  await Promise.all(sides.map(run));
  const rows = [];
  for (const side of sides) rows.push(await measure(side));
  console.table(rows);
  const [trimmed, untrimmed] = rows;
  console.log(
    JSON.stringify({
      appends,
      streamBytesTrimmed: trimmed.streamBytes,
      streamBytesUntrimmed: untrimmed.streamBytes,
      usedMemoryTrimmed: trimmed.usedMemory,
      usedMemoryUntrimmed: untrimmed.usedMemory,
      usedMemorySaved: untrimmed.usedMemory - trimmed.usedMemory,
    }),
  );
  const tree = await measureTree(sides[1]);
  console.table([tree]);
  console.log(JSON.stringify(tree));
} finally {
  for (const side of sides) {
    side.redis.disconnect();
    await side.server.stop();
  }
  rmSync(dir, { recursive: true, force: true });
}
