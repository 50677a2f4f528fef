import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  PROTOCOL_VERSION,
  sha256Hex,
  toBase64,
  type RoundLogSummary,
  type RoundPlan,
} from '@flotilla/protocol';
import { auditShowCommand, auditVerifyCommand } from '../src/shared/round-log/cli.js';
import { defaultRoundLogPath, readRoundLogFile } from '../src/shared/round-log/index.js';
import type { DashboardSnapshot } from '../src/server/dashboard/dashboard-snapshot.js';
import { loraDelta, readSignedLog, useTestFleet, waitFor, type TestDevice } from './support/index.js';
import { PATIENCE_MS, WAITED_DEADLINE_MS } from '../../test-support/patience.js';

// An operator's honest run in which rounds end without aggregation at every stage: round 1 sees
// its selection timeout pass with no device checked in (it stays open and is not counted against
// maxRounds), then times out in selection with one device waiting (and a device submitting an
// update for it meanwhile); round 2 is selected and misses its quorum at the deadline. The log of
// such a run must verify, and every view of it (audit show, the auditor API, the dashboard's chain
// status) must show the abandoned rounds.

const AUDITOR = 'auditor-token-abandoned-rounds-0123456789';

describe('rounds abandoned before any check-in, in selection and in reporting', () => {
  const fleet = useTestFleet({
    coordinator: { auditorTokens: [AUDITOR] },
    task: {
      rounds: {
        goalCount: 3,
        overSelection: 1,
        minReports: 2,
        selectionTimeoutMs: 1000,
        reportingDeadlineMs: WAITED_DEADLINE_MS,
        maxRounds: 2,
      },
    },
    taskAfterDevices: true,
    devices: 3,
    label: 'ab',
  });

  const abandoned = (roundId: string) => fleet.roundIn(roundId, 'ABANDONED');
  // The `it`s are the steps of one run, in order; the views are read once both rounds are logged.
  const auth = { headers: { authorization: `Bearer ${AUDITOR}` } };
  let lines: Awaited<ReturnType<typeof readSignedLog>> = [];

  it('keeps round 1 open in selection while no device checks in', async () => {
    // Round 1 outlives two selection timeouts with no check-in: still SELECTING, deadline moved on.
    await fleet.selectionKeptOpen('test-task:1', 1000);
    expect((await fleet.tc.coordinator.rounds.get('test-task:1'))?.state).toBe('SELECTING');
    expect(await fleet.tc.coordinator.rounds.get('test-task:2')).toBeNull();
  });

  it('abandons round 1 at a selection timeout with one device waiting, refusing an unselected update', async () => {
    const [d0, d1] = fleet.devices as [TestDevice, TestDevice];
    // Then one device waits; another names the round in an update before it has any plan.
    expect((await d0.checkIn('test-task')).ok).toBe(true);
    const bytes = loraDelta(0.2);
    // No round selected d1: its upload is refused (403 NOT_SELECTED); it submits all the same.
    expect((await d1.upload(bytes)).status).toBe(403);
    const early = await d1.submit(
      d1.metadata(
        {
          taskId: 'test-task',
          roundId: 'test-task:1',
          nonce: randomBytes(32).toString('hex'),
          adapter: { version: 0 },
        } as RoundPlan,
        bytes,
        { protocolVersion: PROTOCOL_VERSION, blobDigest: sha256Hex(bytes) },
      ),
    );
    expect(early.ok).toBe(false);
    expect((await abandoned('test-task:1')).reason).toBe('selection timeout: 1 of 3 devices checked in');
  });

  it('abandons round 2 when its deadline passes without quorum', async () => {
    const d2 = fleet.devices[2] as TestDevice;
    // Round 2: all three are selected, one reports, the deadline passes without quorum.
    await waitFor(
      async () => (await fleet.tc.coordinator.rounds.get('test-task:2'))?.state,
      PATIENCE_MS,
      'round 2',
    );
    await Promise.all(fleet.devices.map((d) => d.checkIn('test-task')));
    const plan = await d2.waitForPlan('test-task:2');
    expect((await d2.report(plan, loraDelta(0.3))).ok).toBe(true);
    expect((await abandoned('test-task:2')).reason).toBe('quorum missed: 1 of 2 updates');
  });

  it('logs both abandonments in a round log that verifies', async () => {
    // The round.abandoned record follows the stored state change.
    const records = await fleet.roundLogWhen(
      'two round.abandoned records',
      (log) => log.filter((r) => r.event.type === 'round.abandoned').length === 2,
    );
    const verdict = await fleet.roundLogVerdict();
    expect(verdict.problems).toEqual([]);
    expect(verdict.ok).toBe(true);
    const types = records.map((r) => `${r.event.type}${'roundId' in r.event ? ` ${r.event.roundId}` : ''}`);
    expect(types.filter((t) => t.startsWith('round.abandoned'))).toEqual([
      'round.abandoned test-task:1',
      'round.abandoned test-task:2',
    ]);
  });

  it('opens no third round once maxRounds (2) is reached', async () => {
    expect(await fleet.tc.coordinator.rounds.get('test-task:3')).toBeNull();
  });

  it('gives an auditor a mirror file that passes audit verify and that audit show explains', async () => {
    const trustedKey = toBase64(fleet.tc.coordinator.coordinatorKey.publicKey);
    // The mirror file, as an auditor receives it: audit verify and audit show.
    const file = defaultRoundLogPath(fleet.tc.stateDir);
    lines = await readSignedLog(fleet.tc.coordinator.redis, fleet.tc.coordinator.prefix);
    await waitFor(async () => (await readRoundLogFile(file)).records.length === lines.length);
    const verify = await auditVerifyCommand({ file, json: false, trustedKey });
    expect(verify.output).toMatch(/^PASS/);
    expect(verify.exitCode).toBe(0);
    const summary = JSON.parse((await auditShowCommand({ file, json: true })).output) as RoundLogSummary;
    expect(summary.rounds.map((r) => [r.roundId, r.status, r.abandonReason])).toEqual([
      ['test-task:1', 'abandoned', 'selection timeout: 1 of 3 devices checked in'],
      ['test-task:2', 'abandoned', 'quorum missed: 1 of 2 updates'],
    ]);
    expect(summary.rounds[0]).toMatchObject({ openedAt: null, selected: [], accepted: 0, minReports: 2 });
    expect(summary.rounds[1]).toMatchObject({ accepted: 1, minReports: 2, goalCount: 3 });
    const text = (await auditShowCommand({ file, json: false, round: 1 })).output;
    expect(text).toContain('round test-task:1 (abandoned before any plan)');
    expect(text).toContain('abandoned: selection timeout: 1 of 3 devices checked in');
  });

  it('answers the auditor API for the abandoned round and verifies the log there', async () => {
    const api = await fetch(`${fleet.tc.coordinator.url}/api/audit/rounds/1`, auth);
    expect(api.status).toBe(200);
    const one = (await api.json()) as RoundLogSummary;
    expect(one.rounds).toHaveLength(1);
    expect(one.rounds[0]).toMatchObject({ roundId: 'test-task:1', status: 'abandoned' });
    const apiVerify = (await (await fetch(`${fleet.tc.coordinator.url}/api/audit/verify`, auth)).json()) as {
      ok: boolean;
    };
    expect(apiVerify.ok).toBe(true);
  });

  it("verifies the dashboard's chain status through the last line", async () => {
    // The dashboard verifies through the last line: the tree head that signs the last record.
    const lastLine = lines.at(-1)?.seq;
    const state = await waitFor(
      async () => {
        const res = await fetch(`${fleet.tc.coordinator.url}/dashboard/api/state`, auth);
        const snapshot = (await res.json()) as DashboardSnapshot;
        return snapshot.chain.verified?.through === lastLine ? snapshot : null;
      },
      PATIENCE_MS,
      'dashboard chain status',
    );
    expect(state.chain.verified?.problems).toEqual([]);
    expect(state.chain.verified?.ok).toBe(true);
  });
});
