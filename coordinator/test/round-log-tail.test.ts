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
import {
  leaveUnsignedTail,
  readSignedLog,
  startCoordinatorProcess,
  testRedisConnections,
  waitFor,
} from './support/index.js';
import type { ChildCoordinator } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

const OPERATOR = 'operator-token-for-tail-tests-0123456789';
const SIGNED_TAIL = "signed the round log's unsigned tail";
const LEASE_ACQUIRED = 'round-driver lease acquired';

describe('a crashed writer’s unsigned tail', () => {
  const connect = testRedisConnections();
  const dirs: string[] = [];
  const children: ChildCoordinator[] = [];

  afterAll(async () => {
    for (const child of children) await child.kill();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  /** A state directory and a prefix for a fresh round log, and a writer on them as a coordinator's. */
  async function stateFor(label: string) {
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
    return { prefix, stateDir, trustedKey: toBase64(signingKey.publicKey), writer };
  }

  /** Leaves the log as a writer killed before its head (3 unsigned records); the lines then. */
  async function crash(state: Awaited<ReturnType<typeof stateFor>>) {
    await leaveUnsignedTail(state.writer, 3);
    const lines = await readRoundLogEntries(connect(), state.prefix);
    const verdict = await verifyRoundLog(lines, { trustedKey: state.trustedKey });
    expect(verdict.problems.map((p) => p.code)).toEqual(['UNSIGNED']);
    return { ...state, lines };
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
    const crashed = await crash(await stateFor('tail-coordinator'));
    const child = await startCoordinatorProcess({
      prefix: crashed.prefix,
      stateDir: crashed.stateDir,
      operatorToken: OPERATOR,
    });
    children.push(child);
    await expectSignedTail(crashed);
    expect(child.logs.join('\n')).toContain(SIGNED_TAIL);
  });

  it('a coordinator process signs it when it takes over the round driver from one that died', async () => {
    const state = await stateFor('tail-takeover');
    const start = () =>
      startCoordinatorProcess({
        prefix: state.prefix,
        stateDir: state.stateDir,
        operatorToken: OPERATOR,
        args: ['--lease-ttl-ms', '2000'],
      });
    const driver = await start();
    children.push(driver);
    await waitFor(() => driver.logs.some((line) => line.includes(LEASE_ACQUIRED)), PATIENCE_MS, 'a driver');
    const follower = await start();
    children.push(follower);
    // Both started on an empty log; then the driver appends, and dies before its head.
    const crashed = await crash(state);
    await driver.kill();
    await expectSignedTail(crashed);
    // The head can be in Redis before the follower's log line has come through its stdout pipe.
    await waitFor(
      () => follower.logs.some((line) => line.includes(SIGNED_TAIL)),
      PATIENCE_MS,
      'the follower to log the signed tail',
    );
    const logs = follower.logs.join('\n');
    expect(logs).toContain(LEASE_ACQUIRED);
    expect(logs.indexOf(SIGNED_TAIL)).toBeGreaterThan(logs.indexOf(LEASE_ACQUIRED));
  });

  it('a worker signs it when it starts', async () => {
    const crashed = await crash(await stateFor('tail-worker'));
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
