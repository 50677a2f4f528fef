import { describe, expect, it } from 'vitest';
import { keyPairFromSeed } from '../signing.js';
import type { RoundLogEvent } from './events.js';
import { RoundLogBuilder, type RoundLogLine } from './log-builder.js';
import { renderRoundLogSummary } from './render.js';
import { summarizeRoundLog } from './summary.js';

const key = keyPairFromSeed(new Uint8Array(32).fill(1));
const digest = (n: number) => n.toString(16).padStart(64, '0');
const dev = (n: number) => `dev_${n.toString(16).padStart(32, '0')}`;

function log(events: RoundLogEvent[]): RoundLogLine[] {
  const builder = new RoundLogBuilder();
  events.forEach((event, seq) => builder.record(event, 1_700_000_000_000 + seq));
  builder.signHead(1_700_000_000_000 + events.length, key);
  return builder.lines;
}

const opened = (n: number): RoundLogEvent => ({
  type: 'round.opened',
  taskId: 't',
  roundId: `t:${n}`,
  goalCount: 3,
  minReports: 2,
  clipNorm: 1,
  parentVersion: n - 1,
  deadline: 0,
  dp: { epsilonBudget: 4, delta: 1e-5, noiseMultiplier: 1 },
});
const accepted = (n: number, d: number, clipped: boolean): RoundLogEvent => ({
  type: 'update.accepted',
  taskId: 't',
  roundId: `t:${n}`,
  device: dev(d),
  blobDigest: digest(d * 10 + n),
  norm: clipped ? 1 : 0.5,
  clipBound: 1,
  clipped,
  bytes: 1000,
  numExamples: 10 * d,
});
const refused = (n: number, d: number, reason: string): RoundLogEvent => ({
  type: 'update.refused',
  taskId: 't',
  roundId: `t:${n}`,
  device: dev(d),
  reason,
  message: reason,
  blobDigest: null,
  norm: null,
  clipBound: null,
  clipped: null,
  bytes: null,
});
const aggregation = (n: number, ds: number[], epsilon: number): RoundLogEvent => ({
  type: 'aggregation',
  taskId: 't',
  roundId: `t:${n}`,
  strategy: 'fedavg',
  strategyOptions: {},
  loraRule: 'ffa-lora',
  participants: ds.map((d) => ({ device: dev(d), blobDigest: digest(d * 10 + n), weight: 10 * d })),
  clipNorm: 1,
  noiseMultiplier: 1,
  epsilon,
  delta: 1e-5,
  aggregateDigest: digest(500 + n),
  deltasRetainedUntil: null,
});

const records = log([
  opened(1),
  accepted(1, 1, false),
  accepted(1, 2, true),
  refused(1, 3, 'NORM_EXCEEDED'),
  refused(1, 4, 'STALE_ROUND'),
  refused(1, 5, 'NORM_EXCEEDED'),
  {
    type: 'round.closed',
    taskId: 't',
    roundId: 't:1',
    accepted: 2,
    refused: 3,
    minReports: 2,
    reason: 'deadline',
  },
  aggregation(1, [1, 2], 1.25),
  {
    type: 'promotion',
    taskId: 't',
    roundId: 't:1',
    version: 1,
    parentVersion: 0,
    manifestDigest: digest(7),
    adapterDigest: digest(8),
  },
  opened(2),
  accepted(2, 2, false),
  accepted(2, 6, false),
  {
    type: 'round.closed',
    taskId: 't',
    roundId: 't:2',
    accepted: 2,
    refused: 0,
    minReports: 2,
    reason: 'goal-reached',
  },
  aggregation(2, [2, 6], 2.5),
  { type: 'rejection', taskId: 't', roundId: 't:2', reasons: ['holdout accuracy fell by 0.08'] },
]);

describe('summarizeRoundLog', () => {
  it('counts rounds, participants, refusals by reason, ε over time and outcomes', () => {
    const summary = summarizeRoundLog(records);
    expect(summary.records).toBe(15);
    expect(summary.invalidRecords).toBe(0);
    // Devices 1, 2 and 6 had updates accepted (2 in both rounds).
    expect(summary.participants).toBe(3);
    expect(
      summary.rounds.map((r) => [r.roundId, r.status, r.accepted, r.clipped, r.acceptedExamples]),
    ).toEqual([
      ['t:1', 'closed', 2, 1, 30],
      ['t:2', 'closed', 2, 0, 80],
    ]);
    expect(summary.rounds[0]?.refusedByReason).toEqual({ NORM_EXCEEDED: 2, STALE_ROUND: 1 });
    expect(summary.epsilonOverTime.map((p) => [p.roundId, p.epsilon])).toEqual([
      ['t:1', 1.25],
      ['t:2', 2.5],
    ]);
    expect(summary.promotions.map((p) => [p.roundId, p.version])).toEqual([['t:1', 1]]);
    expect(summary.rejections.map((r) => r.reasons)).toEqual([['holdout accuracy fell by 0.08']]);
    expect(summary.rounds[1]?.outcome).toEqual({
      kind: 'rejection',
      reasons: ['holdout accuracy fell by 0.08'],
    });
  });

  it('filters by round number and renders text', () => {
    const summary = summarizeRoundLog([...records, null], { round: 2 });
    expect(summary.invalidRecords).toBe(1);
    expect(summary.rounds.map((r) => r.roundId)).toEqual(['t:2']);
    expect(summary.promotions).toEqual([]);
    const text = renderRoundLogSummary(summary);
    expect(text).toContain('round t:2 (closed)');
    expect(text).toContain('rejected: holdout accuracy fell by 0.08');
    expect(text).toContain('(1 invalid: run audit verify)');
  });
});
