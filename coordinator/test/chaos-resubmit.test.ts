import { Redis } from 'ioredis';
import nacl from 'tweetnacl';
import { afterAll, describe, expect, it } from 'vitest';
import { SIGNING_DOMAINS, signPayload, type Ack, type RoundPlan } from '@flotilla/protocol';
import { readRoundLog } from '../src/shared/round-log/index.js';
import { publishRoundOutcome } from '../src/shared/round-outcomes.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { testRedisUrl } from '../../test-support/redis.js';
import { loraDelta, useTestFleet, waitFor, type TestDevice } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

const errorCode = (ack: Ack<unknown>) => (ack.ok ? 'OK' : ack.error.code);

// The ack of the update that closes a round is lost; the device re-submits the identical signed
// update. It must hear DUPLICATE_UPDATE (accepted earlier), not ROUND_CLOSED or STALE_ROUND.
describe('re-submission after a lost ack', () => {
  const fleet = useTestFleet({
    task: { rounds: { goalCount: 3, overSelection: 1, minReports: 2 } },
    devices: 3,
    label: 'rs',
  });
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));

  afterAll(() => redis.disconnect());

  it('answers DUPLICATE_UPDATE in AGGREGATING and after the next round opened; other updates stay refused', async () => {
    const [d0, d1, d2] = fleet.devices as [TestDevice, TestDevice, TestDevice];
    await Promise.all(fleet.devices.map((d) => d.checkIn('test-task')));
    const plans = await Promise.all(fleet.devices.map((d) => d.waitForPlan()));
    const plan = plans[2] as RoundPlan;
    expect((await d0.report(plans[0] as RoundPlan, loraDelta(0.1))).ok).toBe(true);
    expect((await d1.report(plans[1] as RoundPlan, loraDelta(0.2))).ok).toBe(true);

    // The last device's update closes the round (everyone answered).
    const blob = loraDelta(0.3);
    const metadata = d2.metadata(plan, blob);
    expect((await d2.upload(blob)).status).toBe(201);
    const first = await d2.submit(metadata);
    expect(first.ok).toBe(true);
    await fleet.roundIn('test-task:1', 'AGGREGATING');

    // The lost ack: the identical signed update again.
    expect(errorCode(await d2.submit(metadata))).toBe('DUPLICATE_UPDATE');
    // A different update (new blob, properly signed) is still refused by the round's state; its
    // blob cannot even be uploaded once no round is reporting.
    const other = loraDelta(0.25);
    expect((await d2.upload(other)).status).toBe(403);
    expect(errorCode(await d2.submit(d2.metadata(plan, other)))).toBe('ROUND_CLOSED');
    // The stored signature replayed over altered metadata does not verify: no duplicate answer.
    const forged = await d2.emit('update:submit', {
      metadata: { ...metadata, numExamples: metadata.numExamples + 1 },
      signature: signPayload(SIGNING_DOMAINS.update, metadata, d2.keys.secretKey),
    });
    expect(errorCode(forged)).toBe('ROUND_CLOSED');
    // Signed by another key: not the identical update either.
    expect(errorCode(await d2.submit(metadata, nacl.sign.keyPair().secretKey))).toBe('ROUND_CLOSED');

    await publishRoundOutcome(redis, fleet.tc.coordinator.prefix, {
      taskId: 'test-task',
      roundId: 'test-task:1',
      decision: 'COMMITTED',
      version: 1,
      manifestDigest: 'b'.repeat(64),
      reasons: [],
    });
    await waitFor(
      async () => (await fleet.tc.coordinator.rounds.current('test-task'))?.roundId === 'test-task:2',
      PATIENCE_MS,
      'round 2',
    );
    // Committed and superseded: the re-submission is still recognised as the accepted update.
    expect(errorCode(await d2.submit(metadata))).toBe('DUPLICATE_UPDATE');
    expect(errorCode(await d1.submit(d1.metadata(plans[1] as RoundPlan, loraDelta(0.2))))).toBe(
      'STALE_ROUND',
    );

    // Exactly one acceptance per device: re-submissions never count twice.
    const round = await fleet.tc.coordinator.rounds.get('test-task:1');
    expect(round?.acceptedCount).toBe(3);
    expect(Object.keys(await fleet.tc.coordinator.rounds.updates('test-task:1')).sort()).toEqual([
      'rs-0',
      'rs-1',
      'rs-2',
    ]);
    const records = await readRoundLog(redis, fleet.tc.coordinator.prefix);
    const accepted = records.filter((r) => r.event.type === 'update.accepted');
    expect(accepted).toHaveLength(3);
  });
});
