// Builders for round-log tests: records of plausible events under a signed tree head, and a
// verifier call with a pinned key. A "tampered" log here is always re-signed with the coordinator's
// own key, so its tree head is valid and only the round rules can catch it.
import { toBase64 } from '../../src/encoding.js';
import { installNativeEd25519 } from '../../src/node/ed25519.js';
import { keyPairFromSeed, type SigningKeyPair } from '../../src/signing.js';
import type { RoundLogEvent, RoundLogEventOf } from '../../src/round-log/events.js';
import { RoundLogBuilder, type RoundLogLine } from '../../src/round-log/log-builder.js';
import { verifyRoundLogSync, type VerifyRoundLogResult } from '../../src/round-log/verify.js';
import { epsilonOfRho, releasesRho } from '../../src/privacy/ledger.js';
import { DEFAULT_ORDERS } from '../../src/privacy/orders.js';

// node:crypto's ed25519 (RFC 8032: the same bytes as tweetnacl) keeps the tests fast.
installNativeEd25519();

export const coordinatorKey = keyPairFromSeed(new Uint8Array(32).fill(1));
export const pub = (key: SigningKeyPair): string => toBase64(key.publicKey);
export const digest = (n: number): string => n.toString(16).padStart(64, '0');
export const dev = (n: number): string => `dev_${n.toString(16).padStart(32, 'a')}`;

export const TASK = 'mnist-lora';
export const roundOf = (n: number): string => `${TASK}:${n}`;

/** The DP promise of the fixture task: z = 2, budget ε = 8 at δ = 1e-5. */
export const DP = { epsilonBudget: 8, delta: 1e-5, noiseMultiplier: 2 } as const;

export function opened(
  n: number,
  overrides: Partial<RoundLogEventOf<'round.opened'>> = {},
): RoundLogEventOf<'round.opened'> {
  return {
    type: 'round.opened',
    taskId: TASK,
    roundId: roundOf(n),
    goalCount: 3,
    minReports: 2,
    clipNorm: 1,
    parentVersion: 0,
    deadline: 1_700_000_600_000,
    dp: { ...DP },
    ...overrides,
  };
}

export function selected(n: number, devices: number[]): RoundLogEventOf<'round.selected'> {
  return {
    type: 'round.selected',
    taskId: TASK,
    roundId: roundOf(n),
    devices: devices.map(dev),
    eligible: 9,
  };
}

/**
 * An accepted update as the coordinator logs it in a DP round (the fixture task's): named by its
 * commitment, no per-update values. `plain` gives the record of a round without DP.
 */
export function accepted(
  n: number,
  device: number,
  plain?: { norm: number },
): RoundLogEventOf<'update.accepted'> {
  const base = {
    type: 'update.accepted' as const,
    taskId: TASK,
    roundId: roundOf(n),
    device: dev(device),
    blobDigest: digest(1000 * n + device),
    clipBound: 1,
  };
  if (plain === undefined) return { ...base, norm: null, clipped: null, bytes: null, numExamples: null };
  return { ...base, norm: plain.norm, clipped: plain.norm >= 1, bytes: 4096, numExamples: 100 + device };
}

/** A refused update as logged in a DP round (no per-update values); `plain` for a round without DP. */
export function refused(
  n: number,
  device: number,
  reason = 'NORM_EXCEEDED',
  plain = false,
): RoundLogEventOf<'update.refused'> {
  return {
    type: 'update.refused',
    taskId: TASK,
    roundId: roundOf(n),
    device: dev(device),
    reason,
    message: 'refused',
    blobDigest: digest(5000 + device),
    norm: null,
    clipBound: 1,
    clipped: plain ? false : null,
    bytes: plain ? 4096 : null,
  };
}

export function closed(
  n: number,
  counts: { accepted: number; refused?: number },
  reason: 'goal-reached' | 'deadline' = 'goal-reached',
): RoundLogEventOf<'round.closed'> {
  return {
    type: 'round.closed',
    taskId: TASK,
    roundId: roundOf(n),
    accepted: counts.accepted,
    refused: counts.refused ?? 0,
    minReports: 2,
    reason,
  };
}

export function abandoned(
  n: number,
  accepted: number,
  reason = 'quorum missed',
): RoundLogEventOf<'round.abandoned'> {
  return { type: 'round.abandoned', taskId: TASK, roundId: roundOf(n), accepted, minReports: 2, reason };
}

export function aggregation(
  n: number,
  devices: number[],
  privacy: { epsilon: number | null; noiseMultiplier?: number; delta?: number | null },
): RoundLogEventOf<'aggregation'> {
  return {
    type: 'aggregation',
    taskId: TASK,
    roundId: roundOf(n),
    strategy: 'fedavg',
    strategyOptions: {},
    loraRule: 'ffa',
    participants: devices.map((d) => ({ device: dev(d), blobDigest: digest(1000 * n + d), weight: 1 })),
    clipNorm: 1,
    noiseMultiplier: privacy.noiseMultiplier ?? (privacy.epsilon === null ? 0 : DP.noiseMultiplier),
    epsilon: privacy.epsilon,
    delta: privacy.delta !== undefined ? privacy.delta : privacy.epsilon === null ? null : DP.delta,
    aggregateDigest: digest(9000 + n),
    deltasRetainedUntil: null,
  };
}

/**
 * A DP aggregation as the worker writes it: its privacy block (one `update-sum` release with
 * sensitivity C = 1 and noise std z·C) and ε at δ after the task's charged rounds, whose noise
 * multipliers are `charged` (this round's last; a number n: n rounds at z = 2).
 */
export function chargedAggregation(
  n: number,
  devices: number[],
  charged: number | number[],
): RoundLogEventOf<'aggregation'> {
  const zs =
    typeof charged === 'number' ? Array.from({ length: charged }, () => DP.noiseMultiplier) : charged;
  const release = (z: number) => ({ query: 'update-sum' as const, sensitivity: 1, noiseStd: z });
  const z = zs.at(-1) ?? DP.noiseMultiplier;
  const { epsilon } = epsilonOfRho({
    rho: zs.reduce((sum, zi) => sum + releasesRho([release(zi)]), 0),
    orders: DEFAULT_ORDERS,
    delta: DP.delta,
    conversion: 'improved',
  });
  return {
    ...aggregation(n, devices, { epsilon, noiseMultiplier: z }),
    privacy: {
      accountant: 'rdp-gaussian',
      relation: 'zero-out',
      sampling: 'fixed-size',
      amplification: 'none',
      orders: [...DEFAULT_ORDERS],
      conversion: 'improved',
      releases: [release(z)],
      chargedRounds: zs.length,
    },
  };
}

export function audit(n: number, decision: 'pass' | 'fail'): RoundLogEventOf<'audit'> {
  return { type: 'audit', taskId: TASK, roundId: roundOf(n), decision, findings: [], metrics: {} };
}

export function promotion(n: number, version: number): RoundLogEventOf<'promotion'> {
  return {
    type: 'promotion',
    taskId: TASK,
    roundId: roundOf(n),
    version,
    parentVersion: version - 1,
    manifestDigest: digest(7000 + version),
    adapterDigest: digest(8000 + version),
  };
}

export function rejection(n: number, reason = 'drift'): RoundLogEventOf<'rejection'> {
  return { type: 'rejection', taskId: TASK, roundId: roundOf(n), reasons: [reason] };
}

/**
 * The events as records one second apart, then one tree head signed by `key` over all of them:
 * record k is line k, so a problem's position is the index of its event.
 */
export function signedLog(
  events: readonly RoundLogEvent[],
  key: SigningKeyPair = coordinatorKey,
): RoundLogLine[] {
  const log = new RoundLogBuilder();
  events.forEach((event, seq) => log.record(event, 1_700_000_000_000 + seq * 1000));
  log.signHead(1_700_000_000_000 + events.length * 1000, key);
  return log.lines;
}

/** Verifies a log with the coordinator key pinned (JSON round trip, as from a file). */
export function verifyEvents(events: readonly RoundLogEvent[]): VerifyRoundLogResult {
  const records = JSON.parse(JSON.stringify(signedLog(events))) as unknown[];
  return verifyRoundLogSync(records, { trustedKey: pub(coordinatorKey) });
}

/** Problems as `[seq, code]` pairs, for compact assertions. */
export const problemsOf = (result: VerifyRoundLogResult): Array<[number | null, string]> =>
  result.problems.map((p) => [p.seq, p.code]);
