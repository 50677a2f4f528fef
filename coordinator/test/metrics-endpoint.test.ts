import { Writable } from 'node:stream';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex, type RoundPlan } from '@flotilla/protocol';
import { publishRoundOutcome } from '../src/shared/round-outcomes.js';
import { loraDelta, useTestFleet, waitFor, type TestDevice } from './support/index.js';
import { parsePrometheusText, sampleValue, type MetricFamily } from './metrics-text-parser.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

const TASK = 'test-task';
const ROUND = `${TASK}:1`;

/** pino's JSON lines, kept in memory. */
function memoryLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

async function scrape(url: string): Promise<Map<string, MetricFamily>> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return parsePrometheusText(await res.text());
}

// The round runs once, in the order a fleet meets it: scraped before, at the close (no worker
// runs, so the job waits) and after the decision arrives; each `it` checks one family of counts.
describe('/metrics on a coordinator running a round', () => {
  const { logger, lines } = memoryLogger();
  const fleet = useTestFleet({
    coordinator: { logger },
    task: {
      rounds: { goalCount: 3, overSelection: 1, minReports: 2, selectionTimeoutMs: 60_000 },
    },
    devices: 3,
  });

  let before: Map<string, MetricFamily>;
  let mid: Map<string, MetricFamily>;
  let stateAtClose: string | undefined;
  const blobA = loraDelta(0.3);
  const blobB = loraDelta(0.6);
  const blobC = loraDelta(2);

  beforeAll(async () => {
    const [a, b, c] = fleet.devices as [TestDevice, TestDevice, TestDevice];
    before = await scrape(fleet.tc.coordinator.url);

    for (const d of fleet.devices) expect(await d.checkIn(TASK)).toMatchObject({ ok: true });
    const plans = await Promise.all(fleet.devices.map((d) => d.waitForPlan(ROUND)));
    const [planA, planB, planC] = plans as [RoundPlan, RoundPlan, RoundPlan];
    // Clip bound 1: norms 0.3 and 0.6 pass, 2.0 is refused with NORM_EXCEEDED.
    expect(await a.report(planA, blobA)).toMatchObject({ ok: true });
    expect(await b.report(planB, blobB)).toMatchObject({ ok: true });
    // A second submission of an accepted update: DUPLICATE_UPDATE.
    expect(await a.submit(a.metadata(planA, blobA))).toMatchObject({
      ok: false,
      error: { code: 'DUPLICATE_UPDATE' },
    });
    // A refusal for the norm is final: everyone answered, the round closes with 2 of quorum 2.
    expect(await c.report(planC, blobC)).toMatchObject({ ok: false, error: { code: 'NORM_EXCEEDED' } });
    // One download of an accepted blob, in full (by its uploader: raw deltas are private).
    const download = await fetch(`${fleet.tc.coordinator.url}/blobs/${sha256Hex(blobA)}`, {
      headers: { authorization: `Bearer ${a.session?.sessionToken ?? ''}` },
    });
    expect((await download.arrayBuffer()).byteLength).toBe(blobA.length);
    // The fleet hears of the close (and the metrics count it) just before the job is enqueued:
    // wait for both, or a scrape in between (a loaded machine widens it) sees no job yet.
    mid = await waitFor(
      async () => {
        const families = await scrape(fleet.tc.coordinator.url);
        const closed = sampleValue(families, 'flotilla_round_transitions_total', {
          task: TASK,
          state: 'AGGREGATING',
        });
        const queued = sampleValue(families, 'flotilla_aggregate_queue_jobs', { state: 'waiting' });
        return closed === 1 && queued === 1 ? families : null;
      },
      PATIENCE_MS,
      'round closed',
    );
    stateAtClose = (await fleet.tc.coordinator.rounds.get(ROUND))?.state;
  });

  it('counts the connected devices and their sockets before any round', () => {
    expect(sampleValue(before, 'flotilla_connected_devices')).toBe(3);
    expect(sampleValue(before, 'flotilla_socket_connections_total')).toBe(3);
    expect(sampleValue(before, 'flotilla_updates_accepted_total', { task: TASK })).toBeUndefined();
  });

  it('counts 2 accepted updates and the refusals by reason', () => {
    expect(sampleValue(mid, 'flotilla_updates_accepted_total', { task: TASK })).toBe(2);
    expect(sampleValue(mid, 'flotilla_updates_refused_total', { task: TASK, reason: 'NORM_EXCEEDED' })).toBe(
      1,
    );
    expect(
      sampleValue(mid, 'flotilla_updates_refused_total', { task: TASK, reason: 'DUPLICATE_UPDATE' }),
    ).toBe(1);
  });

  it("counts the round's transitions, and the job waiting in the queue while no worker runs", () => {
    expect(stateAtClose).toBe('AGGREGATING');
    expect(sampleValue(mid, 'flotilla_round_transitions_total', { task: TASK, state: 'REPORTING' })).toBe(1);
    expect(sampleValue(mid, 'flotilla_round_transitions_total', { task: TASK, state: 'AGGREGATING' })).toBe(
      1,
    );
    expect(sampleValue(mid, 'flotilla_aggregate_queue_jobs', { state: 'waiting' })).toBe(1);
  });

  it('counts the blob bytes of three uploads and one full download', () => {
    // Three uploads (the duplicate re-used the stored blob), one full download.
    expect(sampleValue(mid, 'flotilla_blob_bytes_received_total')).toBe(
      blobA.length + blobB.length + blobC.length,
    );
    expect(sampleValue(mid, 'flotilla_blob_bytes_sent_total')).toBe(blobA.length);
  });

  it('buckets the accepted norm ratios against the clip bound', () => {
    // Accepted norm ratios 0.3 and 0.6 (clip bound 1): one at or below 0.5, both at or below 0.75.
    expect(sampleValue(mid, 'flotilla_update_norm_ratio_bucket', { task: TASK, le: '0.5' })).toBe(1);
    expect(sampleValue(mid, 'flotilla_update_norm_ratio_bucket', { task: TASK, le: '0.75' })).toBe(2);
  });

  describe("after the worker's decision arrives and a device leaves", () => {
    let after: Map<string, MetricFamily>;
    let stateAfterDecision: string | undefined;

    beforeAll(async () => {
      // The worker's decision arrives over pub/sub: COMMITTED, with an aggregation time.
      await publishRoundOutcome(fleet.tc.coordinator.redis, fleet.tc.coordinator.prefix, {
        taskId: TASK,
        roundId: ROUND,
        decision: 'COMMITTED',
        version: null,
        manifestDigest: null,
        reasons: [],
      });
      await waitFor(
        async () =>
          sampleValue(await scrape(fleet.tc.coordinator.url), 'flotilla_rounds_total', {
            task: TASK,
            outcome: 'committed',
          }) === 1,
        PATIENCE_MS,
        'commit counted',
      );
      stateAfterDecision = (await fleet.tc.coordinator.rounds.get(ROUND))?.state;
      (fleet.devices[0] as TestDevice).disconnect();
      await waitFor(
        async () => sampleValue(await scrape(fleet.tc.coordinator.url), 'flotilla_connected_devices') === 2,
        PATIENCE_MS,
        'disconnect counted',
      );
      after = await scrape(fleet.tc.coordinator.url);
    });

    it('counts the committed round and times its aggregation', () => {
      expect(stateAfterDecision).toBe('COMMITTED');
      expect(sampleValue(after, 'flotilla_rounds_total', { task: TASK, outcome: 'committed' })).toBe(1);
      expect(
        sampleValue(after, 'flotilla_rounds_total', { task: TASK, outcome: 'abandoned' }),
      ).toBeUndefined();
      expect(
        sampleValue(after, 'flotilla_aggregation_duration_seconds_count', {
          task: TASK,
          outcome: 'committed',
        }),
      ).toBe(1);
      expect(
        sampleValue(after, 'flotilla_aggregation_duration_seconds_sum', { task: TASK, outcome: 'committed' }),
      ).toBeGreaterThan(0);
    });

    it('counts the disconnection', () => {
      expect(sampleValue(after, 'flotilla_socket_disconnections_total')).toBe(1);
    });

    it("agrees with prom-client's own view of every Flotilla counter", async () => {
      for (const metric of await fleet.tc.coordinator.metrics.registry.getMetricsAsJSON()) {
        // Process counters (CPU seconds…) move between two reads; Flotilla's own must not.
        if (String(metric.type) !== 'counter' || /^flotilla_(process|nodejs)_/.test(metric.name)) continue;
        for (const v of metric.values)
          expect(sampleValue(after, metric.name, v.labels as Record<string, string>), metric.name).toBe(
            v.value,
          );
      }
    });

    it('writes the round id on every round-scoped log line', () => {
      for (const msg of [
        'update accepted',
        'update refused',
        'round decided',
        'aggregation outcome applied',
      ]) {
        const matching = lines.filter((l) => l.msg === msg);
        expect(matching.length, msg).toBeGreaterThan(0);
        for (const line of matching) expect(line.roundId, msg).toBe(ROUND);
      }
    });
  });
});
