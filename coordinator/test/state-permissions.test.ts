// Issue 15: "Blob files, the round-log file and embedded Redis data are not world-readable."
// Checked with fs.stat on what a coordinator child process and an embedded redis-server write.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex, type RoundPlan } from '@flotilla/protocol';
import { startEmbeddedRedis, type EmbeddedRedis } from '../src/shared/embedded-redis.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { loraDelta, startChildFleet, type ChildFleet, type TestDevice } from './support/index.js';

/** Permission bits for group and others (any of them set: readable or enterable by someone else). */
const OTHERS = 0o077;

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

/** Every file and directory below `dir`, itself included. */
function walk(dir: string): string[] {
  const found = [dir];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...walk(path));
    else found.push(path);
  }
  return found;
}

describe('state on disk is private to the coordinator user', () => {
  let fleet: ChildFleet | null = null;
  let embedded: EmbeddedRedis | null = null;
  const dirs: string[] = [];
  afterAll(async () => {
    await fleet?.stop();
    await embedded?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('blob files and the round-log mirror are owner-only (local blob store)', async () => {
    fleet = await startChildFleet();
    const { taskId, baseDigest } = await fleet.createTask();
    const devices = await fleet.connectDevices(3);
    const [plan] = await fleet.select(devices, taskId);
    const delta = loraDelta(0.3);
    expect((await (devices[0] as TestDevice).report(plan as RoundPlan, delta)).ok).toBe(true);

    const blobs = join(fleet.stateDir, 'blobs');
    const files = [baseDigest, sha256Hex(delta)].map((d) => join(blobs, d.slice(0, 2), d));
    for (const path of [blobs, ...files, join(blobs, 'tmp')])
      expect({ path, others: modeOf(path) & OTHERS }).toEqual({ path, others: 0 });
    const mirror = join(fleet.stateDir, 'audit', 'round-log.jsonl');
    expect(statSync(mirror).size).toBeGreaterThan(0);
    expect(modeOf(mirror) & OTHERS).toBe(0);
    expect(modeOf(join(fleet.stateDir, 'audit')) & OTHERS).toBe(0);
  });

  it("an embedded redis-server's data directory and files (AOF) are owner-only", async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'flotilla-perm-redis-')), 'redis');
    dirs.push(join(dataDir, '..'));
    embedded = await startEmbeddedRedis({ dataDir });
    const redis = new Redis(redisOptionsFromUrl(embedded.url));
    try {
      await redis.set('flotilla:blob:probe', 'a raw delta would be here');
      // A rewrite creates fresh AOF files, as a long-running server does by itself.
      await redis.bgrewriteaof();
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      redis.disconnect();
    }
    const entries = walk(dataDir);
    expect(entries.length).toBeGreaterThan(2);
    for (const path of entries) expect({ path, others: modeOf(path) & OTHERS }).toEqual({ path, others: 0 });
  });
});
