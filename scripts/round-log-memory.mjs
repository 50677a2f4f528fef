#!/usr/bin/env node
// Redis memory of the round log with and without stream trimming, side by side in one run:
// two private redis-servers, the same N `update.accepted` appends to each (one writer keeping
// the default 10,000 lines, one never trimming), then INFO memory and MEMORY USAGE of the keys.
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
    treeBytes: await usage(keys.tree),
    usedMemory,
    mirrorBytes: statSync(side.filePath).size,
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
} finally {
  for (const side of sides) {
    side.redis.disconnect();
    await side.server.stop();
  }
  rmSync(dir, { recursive: true, force: true });
}
