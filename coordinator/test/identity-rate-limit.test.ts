import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SIGNING_DOMAINS,
  signPayload,
  summarizeRoundLog,
  type Ack,
  type RoundLogEvent,
  type RoundLogEventOf,
  type UpdateMetadata,
} from '@flotilla/protocol';
import { auditVerifyCommand, exportRoundLog, readRoundLog } from '../src/shared/round-log/index.js';
import { loraDelta, ProcessCluster, TestDevice } from './support/index.js';

// One identity flooding refused submissions used to get a fresh burst with every new connection
// (1,000 submits in 10.8 s passed the limiter) and every refusal appended a signed record
// (+1,003 records). Against two coordinator processes with their default limits (20 messages/s,
// burst 100 per identity): the budget follows the identity across connections and processes,
// and the log grows by one record per (round, device, reason) plus count records that add up.

const TASK = 'flood';
const ROUND = `${TASK}:1`;
const CONNECTIONS = 10;
const PER_CONNECTION = 100;
const { perSecond, burst } = { perSecond: 20, burst: 100 };

const codeOf = (ack: Ack<unknown>): string => (ack.ok ? 'OK' : ack.error.code);

describe('per-identity rate limit and bounded refusal logging (two coordinator processes)', () => {
  const cluster = new ProcessCluster('flood');
  let honest: TestDevice[] = [];
  let attacker: TestDevice;

  beforeAll(async () => {
    await cluster.startCoordinator();
    await cluster.startCoordinator();
    // The flood takes over 30 s on a loaded machine; the round must outlast it (it closes as soon
    // as both honest devices report, so the long deadline costs nothing).
    await cluster.createTask(TASK, { rounds: { goalCount: 2, minReports: 2, reportingDeadlineMs: 600_000 } });
    honest = await cluster.enrollAndConnect('honest', 2);
    attacker = await cluster.enrollOne('attacker', cluster.url(1));
  });
  afterAll(() => cluster.stop());

  // The flood and the round's close run once in beforeAll; each `it` checks one consequence.
  const codes: string[] = [];
  let passed: string[] = [];
  let elapsedSeconds = 0;
  let during: RoundLogEvent[] = [];
  let closed: RoundLogEventOf<'round.closed'>;
  let events: RoundLogEvent[] = [];

  beforeAll(async () => {
    const plan = await cluster.joinFirstRound(TASK, honest);
    const recordsBefore = (await cluster.events()).length;

    // 1,000 submissions from one identity, 100 at a time over 10 fresh connections alternating
    // between the two processes. Half name a wrong nonce, half another device. Signed beforehand
    // (tweetnacl signs slowly), so the flood goes out as fast as the connections carry it; in
    // slices that let the event loop run, or on a loaded machine the signing holds it past
    // socket.io's heartbeat timeout (20 s) and the honest devices' connections are closed.
    const blob = loraDelta(0.1);
    const submissions: Array<{ metadata: UpdateMetadata; signature: string }> = [];
    for (let i = 0; i < CONNECTIONS * PER_CONNECTION; i++) {
      const metadata = attacker.metadata(
        plan,
        blob,
        i % 2 === 0 ? { nonce: randomBytes(32).toString('hex') } : { deviceId: 'honest-0' },
      );
      submissions.push({
        metadata,
        signature: signPayload(SIGNING_DOMAINS.update, metadata, attacker.keys.secretKey),
      });
      if (i % 20 === 19) await new Promise((resolve) => setImmediate(resolve));
    }
    const started = Date.now();
    for (let c = 0; c < CONNECTIONS; c++) {
      attacker.disconnect();
      attacker = new TestDevice(cluster.url(c % 2), attacker.deviceId, attacker.keys);
      expect((await attacker.connect()).ok).toBe(true);
      const batch = submissions.slice(c * PER_CONNECTION, (c + 1) * PER_CONNECTION);
      const acks = await Promise.all(batch.map((submission) => attacker.emit('update:submit', submission)));
      codes.push(...acks.map(codeOf));
    }
    elapsedSeconds = (Date.now() - started) / 1000;
    passed = codes.filter((c) => c !== 'RATE_LIMITED');
    during = (await cluster.events()).slice(recordsBefore);

    // The honest devices report; the round closes.
    for (const [i, d] of honest.entries())
      expect(await d.report(plan, loraDelta(0.1 * (i + 1)))).toMatchObject({ ok: true });
    closed = await waitForClosed(cluster);
    events = await cluster.events(ROUND);
    console.info(
      `[flood] ${codes.length} submits in ${elapsedSeconds.toFixed(1)} s: ${passed.length} past the limiter, ` +
        `${during.length} records during the flood, ${events.length} records for the round`,
    );
  });

  it('keeps one budget per identity across connections and processes', () => {
    // A token bucket that starts full lets through at most burst + rate × elapsed.
    expect(passed.length).toBeLessThanOrEqual(burst + perSecond * elapsedSeconds + 1);
    expect(new Set(passed)).toEqual(new Set(['NONCE_MISMATCH', 'FORBIDDEN']));
  });

  it('logs one record per refusal reason during the flood, and at most one count record per flush period', () => {
    // Two reasons: two update.refused records, however many refusals there were, and at most
    // one count record per flush period (30 s) that passed meanwhile.
    expect(during.filter((e) => e.type === 'update.refused')).toHaveLength(2);
    const countRecords = during.filter((e) => e.type !== 'update.refused');
    expect(countRecords.every((e) => e.type === 'update.refusals')).toBe(true);
    expect(countRecords.length).toBeLessThanOrEqual(Math.ceil(elapsedSeconds / 30) + 1);
  });

  it('closes the round with its refusal counts written first, adding up to every refusal that passed', () => {
    const pseudonym = (during[0] as RoundLogEventOf<'update.refused'>).device;
    const logged = events.filter((e) => e.type === 'update.refused' && e.device === pseudonym).length;
    const counted = events
      .filter((e) => e.type === 'update.refusals')
      .flatMap((e) => e.counts)
      .filter((c) => c.device === pseudonym)
      .reduce((sum, c) => sum + c.count, 0);
    expect(logged + counted).toBe(passed.length);
    expect(closed.refused).toBe(passed.length);
    // The count record comes before round.closed, so the close's total can be checked from the log.
    const types = events.map((e) => e.type);
    expect(types.indexOf('update.refusals')).toBeLessThan(types.indexOf('round.closed'));
  });

  it('leaves a log that verifies, whose summary adds the counted repeats to the logged refusals', async () => {
    const file = join(cluster.stateDir, 'export.jsonl');
    await exportRoundLog(cluster.redis, cluster.prefix, file);
    const verdict = await auditVerifyCommand({ file, json: true });
    expect(JSON.parse(verdict.output)).toMatchObject({ ok: true });
    const summary = summarizeRoundLog(await readRoundLog(cluster.redis, cluster.prefix));
    const byReason = summary.rounds.find((r) => r.roundId === ROUND)?.refusedByReason;
    expect(byReason).toEqual({
      NONCE_MISMATCH: passed.filter((c) => c === 'NONCE_MISMATCH').length,
      FORBIDDEN: passed.filter((c) => c === 'FORBIDDEN').length,
    });
  });
});

async function waitForClosed(cluster: ProcessCluster): Promise<RoundLogEventOf<'round.closed'>> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const closed = (await cluster.events(ROUND)).find((e) => e.type === 'round.closed');
    if (closed) return closed;
    if (Date.now() > deadline) throw new Error('round did not close');
    await new Promise((r) => setTimeout(r, 50));
  }
}
