import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../canonical-json.js';
import nacl from 'tweetnacl';
import { fromBase64, toBase64, toHex } from '../encoding.js';
import { verifyConsistency } from '../merkle/consistency-proof.js';
import { fromHex } from '../encoding.js';
import { keyPairFromSeed, type SigningKeyPair } from '../signing.js';
import type { RoundLogEvent } from './events.js';
import { RoundLogBuilder, type RoundLogLine } from './log-builder.js';
import type { RoundLogRecord } from './record.js';
import type { TreeHeadLine } from './tree-head.js';
import { verifyRoundLog, verifyRoundLogSync } from './verify.js';

// The support index installs node:crypto's ed25519 verifier (same results as tweetnacl): keeps the
// property tests fast.
import '../../test/support/index.js';

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

type Item = { event: RoundLogEvent; key: SigningKeyPair };

/**
 * The events as records one second apart, each head signed by the key of the item before it: a
 * head after every `headEvery` records, right after a key rotation (by the old key, as the
 * coordinator does), and after the last record.
 */
function chain(items: Item[], options: { headEvery?: number } = {}): RoundLogLine[] {
  const log = new RoundLogBuilder();
  const every = options.headEvery ?? Number.POSITIVE_INFINITY;
  let ts = 1_700_000_000_000;
  items.forEach(({ event, key }, i) => {
    log.record(event, (ts += 1000));
    if (i === items.length - 1 || event.type === 'key.rotated' || log.unsigned >= every)
      log.signHead((ts += 1000), key);
  });
  return log.lines;
}

const isRecord = (line: RoundLogLine): line is RoundLogRecord => 'event' in line;
const isHead = (line: RoundLogLine): line is TreeHeadLine => 'treeHead' in line;

// The tamper suite's log: a head after every record, so the verifier can name the very record
// that was changed. (With sparser heads it names the first record the broken head covers.)
const good = chain(sampleEvents(), { headEvery: 1 });
const positionOf = (eventIndex: number): number =>
  good.findIndex((line) => isRecord(line) && line.leafIndex === eventIndex);
const clone = (lines: readonly RoundLogLine[]): unknown[] => JSON.parse(JSON.stringify(lines)) as unknown[];
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

/**
 * Where tampering with line `k` must be reported: at `k` for a record; for a head, at `k` or at
 * the record before it, which that head was the one to authenticate.
 */
function expectFirstBadAt(result: { ok: boolean; firstBad: number | null }, k: number): void {
  expect(result.ok).toBe(false);
  const line = good[k];
  // A forged head may implicate an earlier record: a last head edited to size 0 leaves every
  // record unsigned, so the first bad one is record 0 (found by this property in CI).
  if (line && isHead(line)) expect(result.firstBad ?? Number.NaN).toBeLessThanOrEqual(k);
  else expect(result.firstBad).toBe(k);
}

describe('verifyRoundLog on an intact log', () => {
  it('passes, following the key rotation', async () => {
    const result = await verifyRoundLog(clone(good), { trustedKey: pub(keyA) });
    expect(result).toEqual({ ok: true, records: 34, firstBad: null, problems: [], recomputed: 0 });
    // Sparse heads verify the same way.
    expect(verify(clone(chain(sampleEvents(), { headEvery: 5 }))).ok).toBe(true);
    expect(verify(clone(chain(sampleEvents()))).ok).toBe(true);
  });

  it('hashes leaves and signs heads as documented (independent SHA-256 and ed25519)', () => {
    const log = new RoundLogBuilder();
    const record = log.record(sampleEvents()[0]?.event ?? opened(R1), 1_700_000_000_000);
    const line = log.signHead(1_700_000_001_000, keyA);
    // A one-leaf tree's root is the leaf hash: SHA-256(0x00 ‖ canonical JSON of the record).
    const leaf = createHash('sha256')
      .update(Buffer.from([0]))
      .update(canonicalJson(record), 'utf8')
      .digest('hex');
    expect(line.treeHead).toMatchObject({ treeSize: 1, rootHash: leaf, keyId: pub(keyA) });
    // The signature is ed25519 over SHA-256("flotilla/v1/tree-head" ‖ 0x00 ‖ canonical JSON of the head).
    const signed = createHash('sha256')
      .update('flotilla/v1/tree-head\u0000', 'utf8')
      .update(canonicalJson(line.treeHead), 'utf8')
      .digest();
    expect(nacl.sign.detached.verify(signed, fromBase64(line.signature), keyA.publicKey)).toBe(true);
    expect(line.consistency).toEqual([]);
  });

  it('passes an empty log', () => {
    expect(verify([])).toMatchObject({ ok: true, records: 0, firstBad: null });
  });

  it('fails records that no signed head covers', () => {
    const log = new RoundLogBuilder();
    log.record(opened(R1), 1_700_000_000_000);
    log.signHead(1_700_000_000_000, keyA);
    log.record(
      { type: 'round.selected', taskId: T, roundId: R1, devices: [dev(1)], eligible: 1 },
      1_700_000_001_000,
    );
    expect(head(verify(clone(log.lines)))).toEqual({ ok: false, firstBad: 2, code: 'UNSIGNED' });
  });

  it('fails a log written before tree heads with a pointer to the format', () => {
    const formatOne = {
      seq: 0,
      ts: 1,
      prevHash: '0'.repeat(64),
      keyId: pub(keyA),
      event: opened(R1),
      hash: digest(1),
      signature: 'x',
    };
    const result = verify([formatOne]);
    expect(head(result)).toEqual({ ok: false, firstBad: 0, code: 'FORMAT' });
    expect(result.problems[0]?.message).toMatch(/format-1/);
  });
});

describe('tampering is detected at the tampered record', () => {
  it('changing any field of any line (property)', () => {
    const cases = good.flatMap((line, k) => leafPaths(line).map((path) => ({ k, path })));
    fc.assert(
      fc.property(fc.constantFrom(...cases), fc.jsonValue(), ({ k, path }, replacement) => {
        const records = clone(good);
        const original = getAt(records[k], path);
        fc.pre(canonicalJson(original) !== canonicalJson(replacement ?? null));
        setAt(records[k], path, replacement);
        expectFirstBadAt(verify(records), k);
      }),
      { numRuns: 400 },
    );
  });

  it('adding or removing a field', () => {
    for (let k = 0; k < good.length; k++) {
      const added = clone(good);
      (added[k] as Record<string, unknown>).note = 'x';
      expectFirstBadAt(verify(added), k);
      const line = good[k];
      if (line && isRecord(line) && line.event.type !== 'key.rotated') {
        const removed = clone(good);
        delete (removed[k] as { event: Record<string, unknown> }).event.taskId;
        expect(verify(removed).firstBad).toBe(k);
      }
    }
  });

  it('deleting any line (cutting the log back to an earlier head needs a pinned head)', () => {
    for (let k = 0; k < good.length - 1; k++) {
      const records = clone(good);
      records.splice(k, 1);
      expectFirstBadAt(verify(records), k);
    }
    // Without its last head, the last record is signed by nothing.
    expect(head(verify(clone(good).slice(0, -1)))).toMatchObject({ ok: false, code: 'UNSIGNED' });
    // Without the last record and its head, the log is an honest shorter log, unless the
    // auditor holds the later head (from a device's proof, the API, a checkpoint).
    const truncated = clone(good).slice(0, -2);
    expect(verify(truncated).ok).toBe(true);
    const last = good.at(-1);
    if (!last || !isHead(last)) throw new Error('fixture');
    const pinned = { expectedHead: { treeSize: last.treeHead.treeSize, rootHash: last.treeHead.rootHash } };
    expect(head(verify(truncated, pinned))).toEqual({
      ok: false,
      firstBad: truncated.length,
      code: 'TRUNCATED',
    });
    expect(verify(clone(good), pinned).ok).toBe(true);
  });

  it('reordering any two lines', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: good.length - 1 }),
        fc.integer({ min: 0, max: good.length - 1 }),
        (i, j) => {
          fc.pre(i !== j);
          const records = clone(good);
          const [lo, hi] = i < j ? [i, j] : [j, i];
          [records[lo], records[hi]] = [records[hi], records[lo]];
          expectFirstBadAt(verify(records), lo);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('inserting a record, even one with the right seq and leaf index, or duplicating one', () => {
    for (let i = 0; i < sampleEvents().length; i++) {
      const k = positionOf(i);
      const original = good[k];
      if (!original || !isRecord(original)) throw new Error('fixture');
      const forged = { ...original, event: opened(`${T}:99`) };
      const records = clone(good);
      records.splice(k, 0, JSON.parse(JSON.stringify(forged)));
      expect(verify(records)).toMatchObject({ ok: false, firstBad: k });
      const duplicate = clone(good);
      duplicate.splice(k, 0, JSON.parse(JSON.stringify(original)));
      expect(verify(duplicate)).toMatchObject({ ok: false, firstBad: k + 1 });
    }
  });

  it('re-signing a head, or every head from a record on, with another key', () => {
    const items = sampleEvents();
    for (let i = 0; i < items.length; i++) {
      const k = positionOf(i);
      const forged = chain(
        items.map((item, j) => (j >= i ? { ...item, key: keyEvil } : item)),
        { headEvery: 1 },
      );
      const result = verify(clone(forged));
      expect(result).toMatchObject({ ok: false, firstBad: k });
      expect(['KEY', 'ROTATION']).toContain(result.problems[0]?.code);
      const sigOnly = clone(good) as RoundLogLine[];
      const line = sigOnly[k + 1];
      if (!line || !isHead(line)) throw new Error('fixture');
      const evil = chain(
        items.map((item) => ({ ...item, key: keyEvil })),
        { headEvery: 1 },
      )[k + 1];
      if (!evil || !isHead(evil)) throw new Error('fixture');
      sigOnly[k + 1] = { ...line, signature: evil.signature };
      expect(head(verify(sigOnly))).toEqual({ ok: false, firstBad: k, code: 'SIGNATURE' });
    }
  });

  it('a head that covers more or fewer records than come before it fails', () => {
    const log = new RoundLogBuilder();
    log.record(opened(R1), 1_700_000_000_000);
    log.signHead(1_700_000_000_000, keyA);
    const lines = clone(log.lines);
    (lines[1] as TreeHeadLine).treeHead.treeSize = 2;
    expect(verify(lines).problems.map((p) => p.code)).toContain('TREE_SIZE');
  });

  it('trusting the wrong first key fails at record 0', () => {
    expect(verifyRoundLogSync(clone(good), { trustedKey: pub(keyB) })).toMatchObject({
      ok: false,
      firstBad: 0,
    });
  });
});

describe('forks: two histories under one key', () => {
  // A dishonest key holder shows a device one history and the auditor another. Both verify on
  // their own; they cannot be reconciled: a head from one fails the other, and no consistency
  // proof leads from one to the other.
  const items = sampleEvents().slice(0, 11);
  const shared = items.slice(0, 5);
  const branchA = chain([...shared, ...items.slice(5)], { headEvery: 2 });
  const forkedEvent = { event: accepted(R1, 9), key: keyA };
  const branchB = chain([...shared, forkedEvent, ...items.slice(6)], { headEvery: 2 });
  const lastHead = (lines: RoundLogLine[]) => {
    const line = lines.filter(isHead).at(-1);
    if (!line) throw new Error('fixture');
    return line.treeHead;
  };

  it('each branch verifies alone; a head of one fails the other', () => {
    expect(verify(clone(branchA)).ok).toBe(true);
    expect(verify(clone(branchB)).problems.map((p) => p.code)).not.toContain('ROOT');
    const headA = lastHead(branchA);
    const result = verify(clone(branchB), {
      expectedHead: { treeSize: headA.treeSize, rootHash: headA.rootHash },
    });
    expect(result.problems.map((p) => p.code)).toContain('TRUNCATED');
  });

  it('no consistency proof joins them, and a spliced log fails at the splice', () => {
    const headsA = branchA.filter(isHead);
    const headsB = branchB.filter(isHead);
    const lastB = headsB.at(-1);
    const beforeFork = headsA[1];
    if (!lastB || !beforeFork) throw new Error('fixture');
    // B's own proof from the shared head verifies; the same proof cannot reach A's later head.
    const headA = lastHead(branchA);
    expect(
      verifyConsistency({
        oldSize: beforeFork.treeHead.treeSize,
        newSize: headA.treeSize,
        oldRoot: fromHex(beforeFork.treeHead.rootHash),
        newRoot: fromHex(lastB.treeHead.rootHash),
        proof: [],
      }).ok,
    ).toBe(false);
    // A's records with B's heads from the fork on.
    const spliced = clone(branchA.map((line, k) => (isHead(line) && k > 6 ? (branchB[k] ?? line) : line)));
    const result = verify(spliced);
    expect(result.ok).toBe(false);
    expect(result.problems[0]?.code).toBe('ROOT');
    expect(toHex(fromHex(headA.rootHash))).not.toBe(lastB.treeHead.rootHash);
  });
});

describe('key rotation', () => {
  const rotationAt = sampleEvents().findIndex((item) => item.event.type === 'key.rotated');

  it('a rotation whose head is signed by the wrong key fails there', () => {
    const wrong = sampleEvents().map((item, i) => (i === rotationAt ? { ...item, key: keyEvil } : item));
    expect(verify(clone(chain(wrong, { headEvery: 1 })))).toMatchObject({
      ok: false,
      firstBad: positionOf(rotationAt),
    });
  });

  it('a rotation naming another previous key fails there', () => {
    const wrong = sampleEvents().map((item, i) =>
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
    expect(head(verify(clone(chain(wrong, { headEvery: 1 }))))).toEqual({
      ok: false,
      firstBad: positionOf(rotationAt),
      code: 'ROTATION',
    });
  });

  it('heads after the rotation still signed by the old key fail', () => {
    const items = sampleEvents().map((item, i) => (i > rotationAt ? { ...item, key: keyA } : item));
    expect(head(verify(clone(chain(items, { headEvery: 1 }))))).toEqual({
      ok: false,
      firstBad: positionOf(rotationAt + 1),
      code: 'KEY',
    });
  });
});

describe('round rules', () => {
  // Every round.opened is followed by the selection of devices 1-9, as the coordinator logs it.
  // One head after the last record: record k is line k.
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
    const log = new RoundLogBuilder();
    log.record(opened(R1), 1_700_000_000_000);
    log.record(accepted(R1, 1), 1_700_000_000_000 - 1);
    log.signHead(1_700_000_000_000, keyA);
    expect(head(verify(clone(log.lines)))).toEqual({ ok: false, firstBad: 1, code: 'TIME' });
  });
});

describe('recomputation of retained aggregates', () => {
  const at = good.findIndex((line) => isRecord(line) && line.event.type === 'aggregation');
  const found = good[at];
  const claimed =
    found && isRecord(found) && found.event.type === 'aggregation' ? found.event.aggregateDigest : '';

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
