import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpdateRefusalSchema, sha256Hex, type RoundLogEventOf, type RoundPlan } from '@flotilla/protocol';
import {
  commitUpdate,
  loadOrCreatePseudonymSecret,
  updateCommitmentKey,
} from '../src/shared/round-log/index.js';
import type { AggregationWorker } from '../src/worker/index.js';
import { loraDelta, startRoundLogWorker, useTestFleet } from './support/index.js';

// A DP round's log publishes nothing computed from one update's content (docs/privacy.md): the
// coordinator names each accepted or refused update by its commitment, an HMAC of the blob's
// digest under a key log readers do not hold, and withholds its norm, clipped flag, size and
// example count; the worker names the participants the same way, weighs each 1 and keeps no
// deltas for recomputation. The log still verifies, counts and ε included.

describe('the round log of a DP round', () => {
  const fleet = useTestFleet({
    task: {
      rounds: { goalCount: 3, overSelection: 1, minReports: 2, reportingDeadlineMs: 30_000, maxRounds: 1 },
      dp: { noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 100 },
    },
    taskAfterDevices: true,
    devices: 3,
    label: 'dp-log',
  });
  let worker: AggregationWorker;

  beforeAll(async () => {
    worker = await startRoundLogWorker({
      redis: fleet.tc.coordinator.redis,
      prefix: fleet.tc.coordinator.prefix,
      stateDir: fleet.tc.stateDir,
    });
  });
  afterAll(async () => {
    await worker.close();
  });

  it('names updates by commitment, withholds per-update values, and verifies', async () => {
    const roundId = 'test-task:1';
    const plans = await fleet.joinRound('test-task', roundId);
    const deltas = [loraDelta(0.5), loraDelta(0.25), loraDelta(0.75)];
    // The third device first sends an update above the clip bound (refused), then a valid one.
    // NORM_EXCEEDED is final: it counts the device as answered, so it reports again before the
    // others, or the round would close without it.
    const tooLarge = loraDelta(3);
    const refusal = await fleet.devices[2]?.report(plans[2] as RoundPlan, tooLarge);
    expect(refusal?.ok).toBe(false);
    for (const i of [2, 0, 1]) {
      const device = fleet.devices[i];
      expect((await device?.report(plans[i] as RoundPlan, deltas[i] as Uint8Array))?.ok).toBe(true);
    }

    const records = await fleet.roundLogWhen(
      'the round decided',
      (log) => log.some((r) => r.event.type === 'promotion' || r.event.type === 'rejection'),
      30_000,
    );
    const key = updateCommitmentKey(await loadOrCreatePseudonymSecret(fleet.tc.stateDir));
    const commitmentOf = (bytes: Uint8Array) => commitUpdate(key, roundId, sha256Hex(bytes));
    const events = records.map((r) => r.event);

    const accepted = events.filter((e) => e.type === 'update.accepted');
    expect(accepted).toHaveLength(3);
    for (const e of accepted)
      expect(e).toMatchObject({ norm: null, clipped: null, bytes: null, numExamples: null, clipBound: 1 });
    expect(new Set(accepted.map((e) => e.blobDigest))).toEqual(new Set(deltas.map(commitmentOf)));

    const [refused] = events.filter((e) => e.type === 'update.refused');
    expect(refused).toMatchObject({
      blobDigest: commitmentOf(tooLarge),
      norm: null,
      clipped: null,
      bytes: null,
    });

    // The refusal's answer names that very record, as logged: nothing the log withholds.
    const answered = UpdateRefusalSchema.parse(refusal?.ok === false ? refusal.error : null);
    expect(answered.logLeaf?.record).toEqual(records.find((r) => r.event.type === 'update.refused'));

    const [aggregation] = events.filter((e): e is RoundLogEventOf<'aggregation'> => e.type === 'aggregation');
    expect(aggregation?.noiseMultiplier).toBe(1);
    expect(aggregation?.deltasRetainedUntil).toBeNull();
    expect(new Set(aggregation?.participants.map((p) => p.blobDigest))).toEqual(
      new Set(deltas.map(commitmentOf)),
    );
    expect(aggregation?.participants.map((p) => p.weight)).toEqual([1, 1, 1]);

    // No blob's own digest appears anywhere in the log: a reader cannot confirm a guess of a delta.
    const text = JSON.stringify(events);
    for (const bytes of [...deltas, tooLarge]) expect(text).not.toContain(sha256Hex(bytes));

    expect((await fleet.roundLogVerdict()).problems).toEqual([]);
  });
});
