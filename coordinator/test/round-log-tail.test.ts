// Records a writer appended without a tree head (it was killed between its appends and its head)
// are signed as soon as a process that writes the log starts: a coordinator process, or a worker.
// Real parts: the test Redis, a coordinator child process, a worker set up as its process is.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { toBase64, verifyRoundLog, type RoundLogLine } from '@flotilla/protocol';
import { loadOrCreateCoordinatorKey } from '../src/shared/coordinator-key.js';
import {
  defaultRoundLogPath,
  loadOrCreatePseudonymSecret,
  openRoundLog,
  readRoundLogEntries,
} from '../src/shared/round-log/index.js';
import { runWorker } from '../src/worker/run-worker.js';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import { startCoordinatorProcess, type ChildCoordinator } from './support/child-coordinator.js';
import { readSignedLog } from './support/round-log-reads.js';
import { testRedisConnections } from './support/test-redis.js';
import { leaveUnsignedTail } from './support/unsigned-tail.js';

describe('a crashed writer’s unsigned tail', () => {
  const connect = testRedisConnections();
  const dirs: string[] = [];
  const children: ChildCoordinator[] = [];

  afterAll(async () => {
    for (const child of children) await child.kill();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  /** A state directory whose round log under `prefix` ends in 3 unsigned records; its key and lines. */
  async function crashedLog(label: string) {
    const prefix = uniquePrefix(label);
    const stateDir = mkdtempSync(join(tmpdir(), `flotilla-${label}-`));
    dirs.push(stateDir);
    const signingKey = loadOrCreateCoordinatorKey(stateDir);
    const writer = openRoundLog({
      redis: connect(),
      prefix,
      filePath: defaultRoundLogPath(stateDir),
      signingKey,
      pseudonymSecret: await loadOrCreatePseudonymSecret(stateDir),
      treeHeadIntervalMs: 3_600_000,
    });
    await leaveUnsignedTail(writer, 3);
    const trustedKey = toBase64(signingKey.publicKey);
    const lines = await readRoundLogEntries(connect(), prefix);
    const verdict = await verifyRoundLog(lines, { trustedKey });
    expect(verdict.problems.map((p) => p.code)).toEqual(['UNSIGNED']);
    return { prefix, stateDir, trustedKey, lines };
  }

  /** The log passes audit verify, and holds the crashed log's lines unchanged, then one tree head over all 4 records. */
  async function expectSignedTail(crashed: { prefix: string; trustedKey: string; lines: RoundLogLine[] }) {
    const lines = await readSignedLog(connect(), crashed.prefix);
    expect(await verifyRoundLog(lines, { trustedKey: crashed.trustedKey })).toMatchObject({
      ok: true,
      problems: [],
    });
    expect(lines.slice(0, crashed.lines.length)).toEqual(crashed.lines);
    const added = lines.slice(crashed.lines.length);
    expect(added).toHaveLength(1);
    expect(added[0] && 'treeHead' in added[0] ? added[0].treeHead.treeSize : null).toBe(4);
  }

  it('a coordinator process signs it when it starts', async () => {
    const crashed = await crashedLog('tail-coordinator');
    const child = await startCoordinatorProcess({
      prefix: crashed.prefix,
      stateDir: crashed.stateDir,
      operatorToken: 'operator-token-for-tail-tests-0123456789',
    });
    children.push(child);
    await expectSignedTail(crashed);
    expect(child.logs.join('\n')).toContain("signed the round log's unsigned tail");
  });

  it('a worker signs it when it starts', async () => {
    const crashed = await crashedLog('tail-worker');
    const worker = await runWorker(
      {
        redisUrl: testRedisUrl(),
        prefix: crashed.prefix,
        stateDir: crashed.stateDir,
        blobStore: 'local',
        logLevel: 'silent',
      },
      pino({ level: 'silent' }),
    );
    try {
      await expectSignedTail(crashed);
    } finally {
      await worker.stop();
    }
  });
});
