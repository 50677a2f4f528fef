import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../canonical-json.js';
import { toBase64 } from '../encoding.js';
import { keyPairFromSeed, type SigningKeyPair } from '../signing.js';
import type { RoundLogEvent } from './events.js';
import { ROUND_LOG_GENESIS_HASH, buildRoundLogRecord, type RoundLogRecord } from './record.js';
import { verifyRoundLog, verifyRoundLogSync } from './verify.js';

// Installs node:crypto's ed25519 verifier (same results as tweetnacl): keeps the property tests fast.
import '../../test/support/round-log-fixtures.js';

const keyA = keyPairFromSeed(new Uint8Array(32).fill(1));
const keyB = keyPairFromSeed(new Uint8Array(32).fill(2));
const keyEvil = keyPairFromSeed(new Uint8Array(32).fill(9));
const pub = (key: SigningKeyPair): string => toBase64(key.publicKey);
const digest = (n: number): string => n.toString(16).padStart(64, '0');
const dev = (n: number): string => `dev_${n.toString(16).padStart(32, 'a')}`;

const T = 'mnist-lora';
const R1 = `${T}:1`;
const R2 = `${T}:2`;

function opened(
  roundId: string,
  overrides: Partial<RoundLogEvent & { type: 'round.opened' }> = {},
): RoundLogEvent {
  return {
    type: 'round.opened',
    taskId: T,
    roundId,
    goalCount: 3,
    minReports: 2,
    clipNorm: 1,
    parentVersion: 0,
    deadline: 1_700_000_600_000,
    dp: { epsilonBudget: 8, delta: 1e-5, noiseMultiplier: 1.1 },
    ...overrides,
  };
}

/** As logged in a DP round (the default `opened`): no per-update values; with `norm`, a round without DP. */
function accepted(roundId: string, n: number, norm?: number): RoundLogEvent {
  const base = {
    type: 'update.accepted' as const,
    taskId: T,
    roundId,
    device: dev(n),
    blobDigest: digest(n),
  };
  if (norm === undefined)
    return { ...base, norm: null, clipBound: 1, clipped: null, bytes: null, numExamples: null };
  return { ...base, norm, clipBound: 1, clipped: norm >= 1, bytes: 4096, numExamples: 100 + n };
}

function aggregation(roundId: string, ns: number[], epsilon: number, retained = false): RoundLogEvent {
  return {
    type: 'aggregation',
    taskId: T,
    roundId,
    strategy: 'fedavg',
    strategyOptions: {},
    loraRule: 'ffa-lora',
    participants: ns.map((n) => ({ device: dev(n), blobDigest: digest(n), weight: 1 })),
    clipNorm: 1,
    noiseMultiplier: 1.1,
    epsilon,
    delta: 1e-5,
    aggregateDigest: digest(1000 + ns.length),
    deltasRetainedUntil: retained ? 1_800_000_000_000 : null,
  };
}

/** Events of a plausible history: a promoted round, a key rotation, an abandoned round. */
function sampleEvents(): Array<{ event: RoundLogEvent; key: SigningKeyPair }> {
  const a = (event: RoundLogEvent) => ({ event, key: keyA });
  const b = (event: RoundLogEvent) => ({ event, key: keyB });
  return [
    a({
      type: 'policy.changed',
      taskId: T,
      previousPolicyDigest: null,
      policyDigest: digest(7),
      changes: [{ path: 'dp.epsilonBudget', from: null, to: 8 }],
      reason: 'task created',
    }),
    a(opened(R1)),
    a({
      type: 'round.selected',
      taskId: T,
      roundId: R1,
      devices: [dev(1), dev(2), dev(3), dev(4)],
      eligible: 9,
    }),
    a(accepted(R1, 1)),
    a(accepted(R1, 2)),
    a({
      type: 'update.refused',
      taskId: T,
      roundId: R1,
      device: dev(4),
      reason: 'NORM_EXCEEDED',
      message: 'norm 3.2 > 1',
      blobDigest: digest(4),
      norm: null,
      clipBound: 1,
      clipped: null,
      bytes: null,
    }),
    a(accepted(R1, 3)),
    a({
      type: 'round.closed',
      taskId: T,
      roundId: R1,
      accepted: 3,
      refused: 1,
      minReports: 2,
      reason: 'goal-reached',
    }),
    a(aggregation(R1, [1, 2, 3], 1.5, true)),
    a({
      type: 'audit',
      taskId: T,
      roundId: R1,
      decision: 'pass',
      findings: [{ code: 'MAD_OUTLIER', severity: 'info', message: 'none', device: null, value: 0 }],
      metrics: { holdoutAccuracy: 0.91 },
    }),
    a({
      type: 'promotion',
      taskId: T,
      roundId: R1,
      version: 1,
      parentVersion: 0,
      manifestDigest: digest(11),
      adapterDigest: digest(12),
    }),
    a({ type: 'key.rotated', previousKeyId: pub(keyA), newKeyId: pub(keyB), reason: 'scheduled rotation' }),
    b(opened(R2, { parentVersion: 1 })),
    b({ type: 'round.selected', taskId: T, roundId: R2, devices: [dev(5), dev(6)], eligible: 2 }),
    b(accepted(R2, 5)),
    b({
      type: 'round.abandoned',
      taskId: T,
      roundId: R2,
      accepted: 1,
      minReports: 2,
      reason: 'deadline passed below quorum',
    }),
    b({
      type: 'rollback',
      taskId: T,
      version: 2,
      rollbackOf: 1,
      manifestDigest: digest(21),
      adapterDigest: digest(12),
      reason: 'drill',
    }),
  ];
}

function chain(
  items: Array<{ event: RoundLogEvent; key: SigningKeyPair }>,
  start = 0,
  prev = ROUND_LOG_GENESIS_HASH,
  t0 = 1_700_000_000_000,
): RoundLogRecord[] {
  const out: RoundLogRecord[] = [];
  let prevHash = prev;
  items.forEach(({ event, key }, i) => {
    const record = buildRoundLogRecord({
      seq: start + i,
      ts: t0 + i * 1000,
      prevHash,
      event,
      signingKey: key,
    });
    out.push(record);
    prevHash = record.hash;
  });
  return out;
}

const good = chain(sampleEvents());
const clone = (records: RoundLogRecord[]): unknown[] => JSON.parse(JSON.stringify(records)) as unknown[];
const head = (result: { ok: boolean; firstBad: number | null; problems: Array<{ code: string }> }) => ({
  ok: result.ok,
  firstBad: result.firstBad,
  code: result.problems[0]?.code,
});
const verify = (records: readonly unknown[], extra: object = {}) =>
  verifyRoundLogSync(records, { trustedKey: pub(keyA), ...extra });

/** Every leaf path of a JSON value. */
function leafPaths(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if (Array.isArray(value)) {
    const inner = value.flatMap((item, i) => leafPaths(item, [...prefix, i]));
    return inner.length > 0 ? inner : [prefix];
  }
  if (typeof value === 'object' && value !== null) {
    const inner = Object.entries(value).flatMap(([k, v]) => leafPaths(v, [...prefix, k]));
    return inner.length > 0 ? inner : [prefix];
  }
  return [prefix];
}

function getAt(value: unknown, path: Array<string | number>): unknown {
  return path.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k], value);
}

function setAt(value: unknown, path: Array<string | number>, next: unknown): void {
  const parent = getAt(value, path.slice(0, -1)) as Record<string | number, unknown>;
  const last = path.at(-1);
  if (last !== undefined) parent[last] = next;
}

describe('verifyRoundLog on an intact log', () => {
  it('passes, following the key rotation', async () => {
    const result = await verifyRoundLog(clone(good), { trustedKey: pub(keyA) });
    expect(result).toEqual({ ok: true, records: 17, firstBad: null, problems: [], recomputed: 0 });
  });

  it('hashes the canonical JSON of the record without hash and signature (independent SHA-256)', () => {
    const first = good[0];
    if (!first) throw new Error('fixture');
    const { hash, signature: _s, ...body } = first;
    expect(hash).toBe(createHash('sha256').update(canonicalJson(body), 'utf8').digest('hex'));
    expect(first.prevHash).toBe('0'.repeat(64));
    expect(good[1]?.prevHash).toBe(hash);
  });

  it('passes an empty log', () => {
    expect(verify([])).toMatchObject({ ok: true, records: 0, firstBad: null });
  });
});

describe('tampering is detected at the tampered record', () => {
  it('changing any field of any record (property)', () => {
    const cases = good.flatMap((record, k) => leafPaths(record).map((path) => ({ k, path })));
    fc.assert(
      fc.property(fc.constantFrom(...cases), fc.jsonValue(), ({ k, path }, replacement) => {
        const records = clone(good);
        const original = getAt(records[k], path);
        fc.pre(canonicalJson(original) !== canonicalJson(replacement ?? null));
        setAt(records[k], path, replacement);
        const result = verify(records);
        expect(result.ok).toBe(false);
        expect(result.firstBad).toBe(k);
      }),
      { numRuns: 300 },
    );
  });

  it('adding or removing a field', () => {
    for (let k = 0; k < good.length; k++) {
      const added = clone(good);
      (added[k] as Record<string, unknown>).note = 'x';
      expect(verify(added).firstBad).toBe(k);
      const removed = clone(good);
      delete (removed[k] as { event: Record<string, unknown> }).event.taskId;
      if (good[k]?.event.type !== 'key.rotated') expect(verify(removed).firstBad).toBe(k);
    }
  });

  it('deleting any record (the last one needs a pinned head)', () => {
    for (let k = 0; k < good.length - 1; k++) {
      const records = clone(good);
      records.splice(k, 1);
      expect(verify(records)).toMatchObject({ ok: false, firstBad: k });
    }
    const last = good.length - 1;
    const truncated = clone(good).slice(0, last);
    const head = { seq: last, hash: good[last]?.hash ?? '' };
    expect(verify(truncated, { expectedHead: head })).toMatchObject({ ok: false, firstBad: last });
    expect(verify(truncated, { expectedHead: head }).problems[0]?.code).toBe('TRUNCATED');
    expect(verify(clone(good), { expectedHead: head }).ok).toBe(true);
  });

  it('reordering any two records', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: good.length - 1 }),
        fc.integer({ min: 0, max: good.length - 1 }),
        (i, j) => {
          fc.pre(i !== j);
          const records = clone(good);
          const [lo, hi] = i < j ? [i, j] : [j, i];
          [records[lo], records[hi]] = [records[hi], records[lo]];
          expect(verify(records)).toMatchObject({ ok: false, firstBad: lo });
        },
      ),
      { numRuns: 60 },
    );
  });

  it('inserting a record, even one correctly chained and signed by another key', () => {
    for (let k = 0; k < good.length; k++) {
      const prev = k === 0 ? ROUND_LOG_GENESIS_HASH : (good[k - 1]?.hash ?? '');
      const forged = buildRoundLogRecord({
        seq: k,
        ts: (good[k]?.ts ?? 0) - 1,
        prevHash: prev,
        event: opened(`${T}:99`),
        signingKey: keyEvil,
      });
      const records = clone(good);
      records.splice(k, 0, JSON.parse(JSON.stringify(forged)));
      expect(verify(records)).toMatchObject({ ok: false, firstBad: k });
      const duplicate = clone(good);
      duplicate.splice(k, 0, JSON.parse(JSON.stringify(good[k])));
      expect(verify(duplicate).ok).toBe(false);
      expect(verify(duplicate).firstBad).toBe(k + 1);
    }
  });

  it('re-signing a record, or the whole rest of the chain, with another key', () => {
    const items = sampleEvents();
    for (let k = 0; k < good.length; k++) {
      const prev = k === 0 ? ROUND_LOG_GENESIS_HASH : (good[k - 1]?.hash ?? '');
      const forgedTail = chain(
        items.slice(k).map(({ event }) => ({ event, key: keyEvil })),
        k,
        prev,
        good[k]?.ts,
      );
      const records = [...clone(good).slice(0, k), ...clone(forgedTail)];
      const result = verify(records);
      expect(result).toMatchObject({ ok: false, firstBad: k });
      expect(['KEY', 'ROTATION']).toContain(result.problems[0]?.code);
      const sigOnly = clone(good) as RoundLogRecord[];
      const original = good[k];
      if (!original) throw new Error('fixture');
      const resigned = buildRoundLogRecord({ ...original, signingKey: keyEvil });
      sigOnly[k] = { ...original, signature: resigned.signature };
      expect(head(verify(sigOnly))).toEqual({ ok: false, firstBad: k, code: 'SIGNATURE' });
    }
  });

  it('trusting the wrong first key fails at record 0', () => {
    expect(verifyRoundLogSync(clone(good), { trustedKey: pub(keyB) })).toMatchObject({
      ok: false,
      firstBad: 0,
    });
  });
});

describe('key rotation', () => {
  const rotationAt = good.findIndex((r) => r.event.type === 'key.rotated');

  it('a rotation signed by the wrong key fails there', () => {
    const items = sampleEvents();
    const wrong = items.map((item, i) => (i === rotationAt ? { ...item, key: keyEvil } : item));
    const result = verify(clone(chain(wrong)));
    expect(result).toMatchObject({ ok: false, firstBad: rotationAt });
  });

  it('a rotation naming another previous key fails there', () => {
    const items = sampleEvents();
    const wrong = items.map((item, i) =>
      i === rotationAt
        ? {
            key: keyA,
            event: {
              type: 'key.rotated' as const,
              previousKeyId: pub(keyEvil),
              newKeyId: pub(keyB),
              reason: 'x',
            },
          }
        : item,
    );
    const result = verify(clone(chain(wrong)));
    expect(head(result)).toEqual({ ok: false, firstBad: rotationAt, code: 'ROTATION' });
  });

  it('records after the rotation still signed by the old key fail', () => {
    const items = sampleEvents().map((item, i) => (i > rotationAt ? { ...item, key: keyA } : item));
    expect(head(verify(clone(chain(items))))).toEqual({ ok: false, firstBad: rotationAt + 1, code: 'KEY' });
  });
});

describe('round rules', () => {
  // Every round.opened is followed by the selection of devices 1-9, as the coordinator logs it.
  const base = (events: RoundLogEvent[]) =>
    chain(
      events
        .flatMap((event): RoundLogEvent[] =>
          event.type === 'round.opened'
            ? [
                event,
                {
                  type: 'round.selected',
                  taskId: T,
                  roundId: event.roundId,
                  devices: [1, 2, 3, 4, 5, 6, 7, 8, 9].map(dev),
                  eligible: 9,
                },
              ]
            : [event],
        )
        .map((event) => ({ event, key: keyA })),
    );
  const passed: RoundLogEvent = {
    type: 'audit',
    taskId: T,
    roundId: R1,
    decision: 'pass',
    findings: [],
    metrics: {},
  };
  const closed = (accepted: number): RoundLogEvent => ({
    type: 'round.closed',
    taskId: T,
    roundId: R1,
    accepted,
    refused: 0,
    minReports: 2,
    reason: 'deadline',
  });
  const promotion: RoundLogEvent = {
    type: 'promotion',
    taskId: T,
    roundId: R1,
    version: 1,
    parentVersion: 0,
    manifestDigest: digest(1),
    adapterDigest: digest(2),
  };

  it('a closed round with quorum may be promoted', () => {
    expect(
      verify(
        clone(
          base([
            opened(R1),
            accepted(R1, 1),
            accepted(R1, 2),
            closed(2),
            aggregation(R1, [1, 2], 7.9),
            passed,
            promotion,
          ]),
        ),
      ),
    ).toMatchObject({ ok: true, problems: [] });
  });

  it('closing below quorum, and promoting from it, fail', () => {
    const result = verify(
      clone(base([opened(R1), accepted(R1, 1), closed(1), aggregation(R1, [1], 1), passed, promotion])),
    );
    expect(result).toMatchObject({ ok: false, firstBad: 3 });
    expect(result.problems.map((p) => [p.seq, p.code])).toEqual([
      [3, 'QUORUM'],
      [6, 'QUORUM'],
    ]);
  });

  it('promoting from an abandoned round fails at the promotion', () => {
    const events: RoundLogEvent[] = [
      opened(R1),
      accepted(R1, 1),
      { type: 'round.abandoned', taskId: T, roundId: R1, accepted: 1, minReports: 2, reason: 'quorum' },
      promotion,
    ];
    expect(head(verify(clone(base(events))))).toEqual({ ok: false, firstBad: 4, code: 'PROMOTION' });
  });

  it('an accepted norm above its bound fails beyond the 1e-6 relative tolerance only', () => {
    const plain = opened(R1, { dp: null });
    expect(verify(clone(base([plain, accepted(R1, 1, 1 + 5e-7)]))).ok).toBe(true);
    expect(head(verify(clone(base([plain, accepted(R1, 1, 1 + 2e-6)]))))).toEqual({
      ok: false,
      firstBad: 2,
      code: 'CLIP',
    });
  });

  it('aggregating past the ε budget fails, and so does promoting the result', () => {
    const result = verify(
      clone(
        base([
          opened(R1),
          accepted(R1, 1),
          accepted(R1, 2),
          closed(2),
          aggregation(R1, [1, 2], 8.01),
          passed,
          promotion,
        ]),
      ),
    );
    expect(result.problems.map((p) => [p.seq, p.code])).toEqual([
      [5, 'BUDGET'],
      [7, 'BUDGET'],
    ]);
  });

  it('an aggregation using an update that was never accepted fails', () => {
    const result = verify(
      clone(base([opened(R1), accepted(R1, 1), accepted(R1, 2), closed(2), aggregation(R1, [1, 2, 3], 1)])),
    );
    expect(head(result)).toEqual({ ok: false, firstBad: 5, code: 'UNKNOWN_PARTICIPANT' });
  });

  it('time going backwards fails', () => {
    const records = chain([{ event: opened(R1), key: keyA }]);
    const second = buildRoundLogRecord({
      seq: 1,
      ts: (records[0]?.ts ?? 0) - 1,
      prevHash: records[0]?.hash ?? '',
      event: accepted(R1, 1),
      signingKey: keyA,
    });
    expect(head(verify(clone([...records, second])))).toEqual({ ok: false, firstBad: 1, code: 'TIME' });
  });
});

describe('recomputation of retained aggregates', () => {
  const at = good.findIndex((r) => r.event.type === 'aggregation');
  const claimed = good[at]?.event.type === 'aggregation' ? good[at].event.aggregateDigest : '';

  it('matches, mismatches, or is unavailable', async () => {
    const calls: string[] = [];
    const ok = await verifyRoundLog(clone(good), {
      trustedKey: pub(keyA),
      recompute: (record) => {
        calls.push(record.event.roundId);
        return Promise.resolve(claimed);
      },
    });
    expect(ok).toMatchObject({ ok: true, recomputed: 1 });
    expect(calls).toEqual([R1]);
    const bad = await verifyRoundLog(clone(good), { trustedKey: pub(keyA), recompute: () => digest(5) });
    expect(head(bad)).toEqual({ ok: false, firstBad: at, code: 'RECOMPUTE' });
    expect(await verifyRoundLog(clone(good), { trustedKey: pub(keyA), recompute: () => null })).toMatchObject(
      { ok: true, recomputed: 0 },
    );
    const thrown = verify(clone(good), {
      recompute: () => {
        throw new Error('blob store down');
      },
    });
    expect(head(thrown)).toEqual({ ok: false, firstBad: at, code: 'RECOMPUTE' });
  });
});
