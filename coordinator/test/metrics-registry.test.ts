import { describe, expect, it } from 'vitest';
import { FlotillaMetrics } from '../src/server/metrics/index.js';
import { parsePrometheusText, sampleValue } from './metrics-text-parser.js';

const DIGEST = 'a'.repeat(64);
const DEVICE = `dev_${'0'.repeat(32)}`;

describe('FlotillaMetrics (no server)', () => {
  it('counts round events and state changes, and times aggregation from close to outcome', async () => {
    const metrics = new FlotillaMetrics({
      processMetrics: false,
      sources: {
        connectedDevices: () => 7,
        queueCounts: () => Promise.resolve({ waiting: 2, active: 1 }),
        epsilonSpent: () => Promise.resolve(new Map([['t', 1.25]])),
      },
    });
    const accepted = {
      type: 'update.accepted' as const,
      taskId: 't',
      roundId: 't:1',
      device: DEVICE,
      blobDigest: DIGEST,
      clipBound: 2,
      clipped: false,
      bytes: 100,
      numExamples: 10,
    };
    // Norm ratios 0.5 and 1.0 against the clip bound 2.
    metrics.observeRoundEvent({ ...accepted, norm: 1 });
    metrics.observeRoundEvent({ ...accepted, norm: 2 });
    for (const reason of ['NORM_EXCEEDED', 'NORM_EXCEEDED', 'ROUND_CLOSED'])
      metrics.observeRefusal('t', reason);
    metrics.observeResubmission('t');
    // Closed at t = 1 s, decided at t = 3.5 s: 2.5 s of aggregation.
    metrics.observeRoundClosed({ roundId: 't:1', taskId: 't', state: 'AGGREGATING' }, 1000);
    const decided = metrics.observeRoundClosed({ roundId: 't:1', taskId: 't', state: 'COMMITTED' }, 3500);
    expect(decided.aggregationSeconds).toBe(2.5);
    // An abandoned round counts as an outcome but has no aggregation time.
    metrics.observeRoundClosed({ roundId: 't:2', taskId: 't', state: 'ABANDONED', reason: 'quorum' }, 9000);
    metrics.blobBytesReceived.inc(300);
    metrics.observeRoundEvent({
      type: 'rollback',
      taskId: 't',
      version: 3,
      rollbackOf: 1,
      manifestDigest: DIGEST,
      adapterDigest: DIGEST,
      reason: 'v2 regressed',
    });

    const families = parsePrometheusText(await metrics.text());
    expect(families.get('flotilla_updates_accepted_total')?.type).toBe('counter');
    expect(sampleValue(families, 'flotilla_updates_accepted_total', { task: 't' })).toBe(2);
    expect(sampleValue(families, 'flotilla_updates_refused_total', { reason: 'NORM_EXCEEDED' })).toBe(2);
    expect(sampleValue(families, 'flotilla_updates_refused_total', { reason: 'ROUND_CLOSED' })).toBe(1);
    expect(sampleValue(families, 'flotilla_updates_resubmitted_total', { task: 't' })).toBe(1);
    expect(sampleValue(families, 'flotilla_rounds_total', { outcome: 'committed' })).toBe(1);
    expect(sampleValue(families, 'flotilla_rounds_total', { outcome: 'abandoned' })).toBe(1);
    expect(sampleValue(families, 'flotilla_round_transitions_total', { state: 'AGGREGATING' })).toBe(1);
    expect(families.get('flotilla_aggregation_duration_seconds')?.type).toBe('histogram');
    expect(
      sampleValue(families, 'flotilla_aggregation_duration_seconds_count', { outcome: 'committed' }),
    ).toBe(1);
    expect(sampleValue(families, 'flotilla_aggregation_duration_seconds_sum', { outcome: 'committed' })).toBe(
      2.5,
    );
    // Buckets are cumulative and inclusive (le): 2.5 falls in le="2.5" but not le="1".
    expect(
      sampleValue(families, 'flotilla_aggregation_duration_seconds_bucket', {
        outcome: 'committed',
        le: '1',
      }),
    ).toBe(0);
    expect(
      sampleValue(families, 'flotilla_aggregation_duration_seconds_bucket', {
        outcome: 'committed',
        le: '2.5',
      }),
    ).toBe(1);
    expect(sampleValue(families, 'flotilla_update_norm_ratio_bucket', { le: '0.5' })).toBe(1);
    expect(sampleValue(families, 'flotilla_update_norm_ratio_bucket', { le: '1' })).toBe(2);
    expect(sampleValue(families, 'flotilla_update_norm_ratio_sum')).toBe(1.5);
    expect(sampleValue(families, 'flotilla_connected_devices')).toBe(7);
    expect(sampleValue(families, 'flotilla_aggregate_queue_jobs', { state: 'waiting' })).toBe(2);
    expect(sampleValue(families, 'flotilla_aggregate_queue_jobs', { state: 'active' })).toBe(1);
    expect(sampleValue(families, 'flotilla_aggregate_queue_jobs', { state: 'delayed' })).toBe(0);
    expect(sampleValue(families, 'flotilla_privacy_epsilon_spent', { task: 't' })).toBe(1.25);
    expect(sampleValue(families, 'flotilla_blob_bytes_received_total')).toBe(300);
    expect(sampleValue(families, 'flotilla_adapter_rollbacks_total', { task: 't' })).toBe(1);
  });

  it('the parser rejects malformed exposition text', () => {
    expect(() => parsePrometheusText('x_total 1\n')).toThrow(/no # TYPE/);
    expect(() => parsePrometheusText('# TYPE x counter\nx{a="1" 1\n')).toThrow(/expected ','/);
    expect(() => parsePrometheusText('# TYPE x counter\nx one\n')).toThrow(/bad sample value/);
    expect(() => parsePrometheusText('# TYPE x counter\nx 1')).toThrow(/newline/);
    const ok = parsePrometheusText('# HELP x a "help"\n# TYPE x gauge\nx{a="q\\"\\n\\\\"} -Inf 123\n');
    expect(sampleValue(ok, 'x', { a: 'q"\n\\' })).toBe(Number.NEGATIVE_INFINITY);
  });
});
