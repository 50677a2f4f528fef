import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { UpdateRefusalSchema, canonicalJson, type RoundLogRecord } from '@flotilla/protocol';
import { loraDelta, useTestFleet, type TestDevice } from './support/index.js';

const fleetOptions = (label: string, refusalFlushMs?: number) => ({
  ...(refusalFlushMs !== undefined ? { coordinator: { refusalFlushMs } } : {}),
  task: { rounds: { goalCount: 2, overSelection: 1, minReports: 2 } },
  devices: 2,
  label,
});

/** Both devices report in round 1, which then closes; device a is left to submit late. */
async function closeFirstRound(fleet: ReturnType<typeof useTestFleet>) {
  const [a, b] = fleet.devices as [TestDevice, TestDevice];
  for (const d of fleet.devices) expect(await d.checkIn('test-task')).toMatchObject({ ok: true });
  const plan = await a.waitForPlan('test-task:1');
  await b.waitForPlan('test-task:1');
  expect(await a.report(plan, loraDelta(0.1))).toMatchObject({ ok: true });
  expect(await b.report(plan, loraDelta(0.2))).toMatchObject({ ok: true });
  await fleet.roundIn('test-task:1', 'AGGREGATING');
  return { a, plan };
}

// Refusals naming a round that has ended keep arriving (late or stale submissions): their repeats
// are written by the round driver's periodic flush, after round.closed, and still add up. Each
// answer names the first refusal's record, the one the log holds.
describe('refusal counts of an ended round', () => {
  const fleet = useTestFleet(fleetOptions('late', 200));

  it('flushes repeats after the round closed, in a record that adds up and verifies', async () => {
    const { a, plan } = await closeFirstRound(fleet);
    // Five different updates for the closed round: all ROUND_CLOSED. (Their blobs could not be
    // uploaded any more: no round is reporting. The round's state is checked first.)
    const late = Array.from({ length: 5 }, (_, i) => a.metadata(plan, loraDelta(0.05 + 0.01 * i)));
    const answers: Array<Awaited<ReturnType<typeof a.submit>>> = [];
    for (const metadata of late) answers.push(await a.submit(metadata));
    for (const answer of answers)
      expect(answer).toMatchObject({ ok: false, error: { code: 'ROUND_CLOSED' } });
    // Flushes run every 200 ms: the four repeats may be split over several count records.
    const repeats = (records: RoundLogRecord[]) =>
      records
        .flatMap((r) => (r.event.type === 'update.refusals' ? r.event.counts : []))
        .reduce((sum, c) => (c.reason === 'ROUND_CLOSED' ? sum + c.count : sum), 0);
    const log = await fleet.roundLogWhen('the flushed counts', (records) => repeats(records) >= 4);
    const types = log.map((r) => r.event.type);
    expect(types.indexOf('round.closed')).toBeLessThan(types.indexOf('update.refused'));
    expect(types.indexOf('round.closed')).toBeLessThan(types.indexOf('update.refusals'));
    // One record for the first refusal, and the four repeats counted: five in all.
    expect(log.filter((r) => r.event.type === 'update.refused')).toHaveLength(1);
    expect(repeats(log)).toBe(4);
    const verdict = await fleet.roundLogVerdict();
    expect(verdict).toMatchObject({ ok: true });
    // Every answer names that one record: the first refusal's (its blob), with its leaf hash
    // SHA-256(0x00 ‖ canonical JSON), so each repeat can be proved against the log as well.
    const refused = log.find((r) => r.event.type === 'update.refused');
    expect(refused?.event).toMatchObject({ reason: 'ROUND_CLOSED', blobDigest: late[0]?.blobDigest });
    const leafHash = createHash('sha256')
      .update(Buffer.concat([Buffer.from([0]), Buffer.from(canonicalJson(refused))]))
      .digest('hex');
    for (const answer of answers) {
      const error = UpdateRefusalSchema.parse(answer.ok ? null : answer.error);
      expect(error.logLeaf).toEqual({ record: refused, leafHash });
    }
  });
});

// Repeats that arrive while the first refusal's record is still being appended get its leaf too:
// they wait for that append instead of reading a leaf that is not kept yet.
describe('refusals repeated at once', () => {
  const fleet = useTestFleet(fleetOptions('burst'));

  it("answers every refusal of a burst with the first refusal's leaf", async () => {
    const { a, plan } = await closeFirstRound(fleet);
    const late = Array.from({ length: 8 }, (_, i) => a.metadata(plan, loraDelta(0.05 + 0.01 * i)));
    const answers = await Promise.all(late.map((metadata) => a.submit(metadata)));
    const leaves = answers.map(
      (answer) => UpdateRefusalSchema.parse(answer.ok ? null : answer.error).logLeaf,
    );
    expect(leaves[0]).not.toBeNull();
    for (const leaf of leaves) expect(leaf).toEqual(leaves[0]);
  });
});
