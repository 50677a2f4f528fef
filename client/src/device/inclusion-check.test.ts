import { describe, expect, it } from 'vitest';
import {
  RoundLogBuilder,
  inclusionProof,
  keyPairFromSeed,
  logLeafOf,
  roundLogLeafHash,
  toBase64,
  toHex,
  type InclusionProof,
  type RoundLogEventOf,
  type RoundLogRecord,
  type RoundPlan,
  type UpdateMetadata,
} from '@flotilla/protocol';
import { checkInclusion, type AnsweredUpdate, type InclusionCheckContext } from './inclusion-check.js';
import type { AckEmitter } from './socket-call.js';

// The device's side of the check, against a stand-in coordinator socket that answers `log:proof`
// from a real log (RoundLogBuilder, signed heads): whether the answer's record is about this
// device's update, answered this way, and whether the proof leads to the signed root.

const key = keyPairFromSeed(new Uint8Array(32).fill(7));
const ROUND = 'digits:1';
const BLOB = 'ab'.repeat(32);

function refused(
  overrides: Partial<RoundLogEventOf<'update.refused'>> = {},
): RoundLogEventOf<'update.refused'> {
  return {
    type: 'update.refused',
    taskId: 'digits',
    roundId: ROUND,
    device: `dev_${'3f'.repeat(16)}`,
    reason: 'NORM_EXCEEDED',
    message: 'delta L2 norm 1.87 exceeds the clip bound 1',
    blobDigest: BLOB,
    norm: null,
    clipBound: 1,
    clipped: false,
    bytes: 120,
    ...overrides,
  };
}

/** A signed log of a record before `event` and `event` itself; the inclusion proof of `event`. */
function loggedAt(event: RoundLogEventOf<'update.refused'>): {
  record: RoundLogRecord;
  inclusion: InclusionProof;
} {
  const log = new RoundLogBuilder();
  const first = log.record(refused({ device: `dev_${'0a'.repeat(16)}` }), 1000);
  const record = log.record(event, 1001);
  const head = log.signHead(1002, key);
  const leaves = [first, record].map(roundLogLeafHash);
  return {
    record,
    inclusion: {
      leafIndex: 1,
      proof: inclusionProof(leaves, 1, 2).map(toHex),
      head: { treeHead: head.treeHead, signature: head.signature },
    },
  };
}

/** A context whose socket answers every `log:proof` with `inclusion`, counting the asks. */
function answering(inclusion: InclusionProof): InclusionCheckContext & { asked: () => number } {
  let asked = 0;
  const socket: AckEmitter = {
    connected: true,
    timeout: () => ({
      emit: (_event, _payload, ack) => {
        asked++;
        ack(null, { ok: true, data: { inclusion } });
      },
    }),
    once: () => undefined,
    off: () => undefined,
  };
  return {
    socket: () => socket,
    coordinatorKey: () => toBase64(key.publicKey),
    ackTimeoutMs: 1000,
    signal: new AbortController().signal,
    retryDelaysMs: [],
    asked: () => asked,
  };
}

/** The device's update as the check reads it: only its round id and blob digest matter. */
function update(refusal: string | null, blobDigest = BLOB, dp = false): AnsweredUpdate {
  const plan: Pick<RoundPlan, 'roundId' | 'dp'> = { roundId: ROUND, ...(dp ? { dp } : {}) };
  const metadata: Pick<UpdateMetadata, 'blobDigest'> = { blobDigest };
  return { plan: plan as RoundPlan, metadata: metadata as UpdateMetadata, refusal };
}

describe('checkInclusion of a refused update', () => {
  it('accepts the refusal record of its update, with its reason, proved against the signed head', async () => {
    const { record, inclusion } = loggedAt(refused());
    const context = answering(inclusion);
    expect(await checkInclusion(logLeafOf(record), update('NORM_EXCEEDED'), context)).toEqual({
      ok: true,
      leafIndex: 1,
      head: inclusion.head,
    });
    expect(context.asked()).toBe(1);
  });

  it.each([
    {
      what: 'another reason',
      event: refused({ reason: 'NOT_SELECTED' }),
      answered: update('NORM_EXCEEDED'),
      reason: "the answer's record gives the reason NOT_SELECTED, not NORM_EXCEEDED",
    },
    {
      what: 'another round',
      event: refused({ roundId: 'digits:2' }),
      answered: update('NORM_EXCEEDED'),
      reason: "the answer's record is for round digits:2",
    },
    {
      what: 'another blob',
      event: refused(),
      answered: update('NORM_EXCEEDED', 'cd'.repeat(32)),
      reason: `the answer's record names blob ${BLOB}, not this update's ${'cd'.repeat(32)}`,
    },
    {
      what: 'a DP-form record in a round whose plan promises no DP',
      event: refused({ bytes: null, clipped: null, blobDigest: 'ef'.repeat(32) }),
      answered: update('NORM_EXCEEDED'),
      reason:
        "the answer's record withholds the update's values (the DP form), but the round plan promises no differential privacy",
    },
    {
      what: "a record stating the update's values in a round whose plan promises DP",
      event: refused(),
      answered: update('NORM_EXCEEDED', BLOB, true),
      reason:
        "the round plan promises differential privacy, but the answer's record states the update's values",
    },
    {
      what: 'a refusal for an accepted update',
      event: refused(),
      answered: update(null),
      reason: "the answer's record is update.refused, not update.accepted",
    },
  ])('reports a record about $what as a mismatch, without asking for a proof', async (c) => {
    const { record, inclusion } = loggedAt(c.event);
    const context = answering(inclusion);
    expect(await checkInclusion(logLeafOf(record), c.answered, context)).toEqual({
      ok: false,
      leafIndex: 1,
      reason: c.reason,
    });
    expect(context.asked()).toBe(0);
  });

  it('does not check the blob of a DP round refusal, which names a commitment and withholds the size', async () => {
    const { record, inclusion } = loggedAt(
      refused({ blobDigest: 'ee'.repeat(32), clipped: null, bytes: null }),
    );
    expect(
      await checkInclusion(logLeafOf(record), update('NORM_EXCEEDED', BLOB, true), answering(inclusion)),
    ).toMatchObject({ ok: true });
  });

  it('reports a proof of the refusal that leads to another root', async () => {
    const { record, inclusion } = loggedAt(refused());
    const forged = { ...inclusion, proof: ['00'.repeat(32)] };
    expect(await checkInclusion(logLeafOf(record), update('NORM_EXCEEDED'), answering(forged))).toEqual({
      ok: false,
      leafIndex: 1,
      reason: "the proof leads to a different root than the tree head's",
    });
  });
});
