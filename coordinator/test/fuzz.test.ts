import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RoundPlan } from '@flotilla/protocol';
import { loraDelta, useTestFleet, waitFor, type TestDevice } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

const EVENTS = [
  'auth:response',
  'checkin',
  'update:submit',
  'update:skip',
  'no-such-event',
  'round:plan',
] as const;

/** Payloads near the real schemas (right keys, wrong values) plus arbitrary JSON. */
const payload = fc.oneof(
  fc.anything({ maxDepth: 3 }),
  fc.record({
    taskId: fc.string(),
    eligibility: fc.anything(),
    budget: fc.anything(),
    adapterVersion: fc.integer(),
  }),
  fc.record({
    metadata: fc.dictionary(fc.string(), fc.jsonValue()),
    signature: fc.string({ maxLength: 100 }),
  }),
  fc.record({ roundId: fc.string(), reason: fc.string(), detail: fc.integer() }),
  fc.record({ signature: fc.oneof(fc.string(), fc.integer()) }),
);

describe('fuzzed socket messages', () => {
  const fleet = useTestFleet({
    coordinator: { rateLimit: { perSecond: 5000, burst: 5000 } },
    task: {
      rounds: { goalCount: 3, overSelection: 1, minReports: 3, reportingDeadlineMs: 20_000 },
    },
    devices: 4,
    label: 'fz',
  });

  it('answers 1,000 malformed messages with error acks, drops ack-less ones, and the round still closes', async () => {
    const [fuzzer, ...honest] = fleet.devices as [TestDevice, ...TestDevice[]];
    await Promise.all(honest.map((d) => d.checkIn('test-task')));
    const plans = await Promise.all(honest.map((d) => d.waitForPlan()));

    const samples = fc.sample(fc.tuple(fc.constantFrom(...EVENTS), payload), { numRuns: 1000, seed: 42 });
    let answered = 0;
    for (let i = 0; i < samples.length; i += 50) {
      const batch = samples.slice(i, i + 50);
      const acks = await Promise.all(batch.map(([event, body]) => fuzzer.emit(event, body)));
      for (const ack of acks) {
        expect(ack.ok).toBe(false);
        if (!ack.ok) expect(['BAD_REQUEST', 'UNAUTHORIZED']).toContain(ack.error.code);
        answered += 1;
      }
    }
    expect(answered).toBe(1000);
    // Wrong arity and no ack callback at all.
    expect(await fuzzer.socket?.timeout(PATIENCE_MS).emitWithAck('checkin', 1, 2, 3)).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST' },
    });
    for (let i = 0; i < 20; i++) fuzzer.socket?.emit('update:submit', { garbage: i });
    await waitFor(() => fleet.tc.coordinator.stats.droppedWithoutAck >= 20, PATIENCE_MS, 'dropped count');
    // A frame over maxHttpBufferSize (64 KiB) ends that connection only.
    fuzzer.socket?.emit('checkin', { taskId: 'x'.repeat(70_000) });
    await waitFor(() => fuzzer.socket?.connected === false, PATIENCE_MS, 'oversized frame disconnects');

    const acks = await Promise.all(
      honest.map((d, i) => d.report(plans[i] as RoundPlan, loraDelta(0.1 * (i + 1)))),
    );
    for (const ack of acks) expect(ack.ok).toBe(true);
    await fleet.roundIn('test-task:1', 'AGGREGATING');
    const health = await fetch(`${fleet.tc.coordinator.url}/healthz`);
    expect(health.status).toBe(200);
  });
});
