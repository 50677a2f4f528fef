// Round-log events for unit tests of what is read back from a log (ground truth, audit precision).
import type { RoundLogEvent } from '@flotilla/protocol';

/** Device n's pseudonym, and a digest numbered n. */
export const dev = (n: number) => `dev_${String(n).padStart(32, '0')}`;
export const digest = (n: number) => String(n).padStart(64, '0');

/** Round `round`'s aggregation over devices (weight 1) or [device, weight] pairs. */
export function aggregation(
  round: number,
  participants: ReadonlyArray<number | [number, number]>,
): RoundLogEvent {
  return {
    type: 'aggregation',
    taskId: 't',
    roundId: `t:${round}`,
    strategy: 'median',
    strategyOptions: {},
    loraRule: 'ffa',
    participants: participants.map((p) => {
      const [device, weight] = typeof p === 'number' ? [p, 1] : p;
      return { device: dev(device), blobDigest: digest(device), weight };
    }),
    clipNorm: 100,
    noiseMultiplier: 0,
    epsilon: null,
    delta: null,
    aggregateDigest: digest(999),
    deltasRetainedUntil: null,
  };
}

/** Round `round`'s audit, flagging `flagged` (warn findings naming them). */
export function audit(
  round: number,
  flagged: readonly number[],
  options: { decision?: 'pass' | 'fail'; holdoutBetterBeyondNoise?: 0 | 1 } = {},
): RoundLogEvent {
  const decision = options.decision ?? 'pass';
  return {
    type: 'audit',
    taskId: 't',
    roundId: `t:${round}`,
    decision,
    findings: [
      {
        code: 'flagged-fraction',
        severity: decision === 'pass' ? 'info' : 'fail',
        message: 'x',
        device: null,
        value: null,
      },
      ...flagged.map((d) => ({
        code: 'low-cosine',
        severity: 'warn' as const,
        message: 'y',
        device: dev(d),
        value: -0.9,
      })),
    ],
    metrics: { updates: 4, holdoutBetterBeyondNoise: options.holdoutBetterBeyondNoise ?? 0 },
  };
}

/** Device `device`'s update refused in round `round` for a norm above the clip bound. */
export function refused(round: number, device: number): RoundLogEvent {
  return {
    type: 'update.refused',
    taskId: 't',
    roundId: `t:${round}`,
    device: dev(device),
    reason: 'NORM_EXCEEDED',
    message: 'above the clip bound',
    blobDigest: null,
    norm: 12,
    clipBound: 1,
    clipped: false,
    bytes: null,
  };
}
