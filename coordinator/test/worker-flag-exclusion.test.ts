import { describe, expect, it } from 'vitest';
import {
  decodeFloat32Tensors,
  initialAdapterTensors,
  type AdapterSpec,
  type RoundLogEventOf,
} from '@flotilla/protocol';
import { recomputeAggregateDigest } from '../src/worker/job/aggregate-digest.js';
import {
  aggregateRetained,
  deltaLike,
  PERMISSIVE_AUDIT,
  testRandom,
  workerTestEnvs,
} from './support/index.js';

// `audit.excludeFlagged`: the drift screen runs before the aggregate and the strategy never sees
// the updates it flags. The round log keeps them as participants of weight 0, named in
// `strategyOptions.screenedOut`, so an auditor's recomputation from the retained deltas leaves out
// the same ones; a log that claims the flagged update was in does not recompute.

const SPEC: AdapterSpec = { mode: 'bias', targetModules: ['hidden'], r: 1, alpha: 1, seed: 3 };
const MODULES = { hidden: { in: 5, out: 4 } };
const openEnv = workerTestEnvs();

/** Coordinate-wise median of equal-length vectors (mean of the two middle values when even). */
function coordinateMedian(vectors: readonly Float32Array[]): number[] {
  const first = vectors[0];
  if (!first) throw new Error('no vectors');
  return Array.from(first, (_, j) => {
    const column = vectors.map((v) => v[j] ?? Number.NaN).sort((a, b) => a - b);
    const mid = column.length >> 1;
    return column.length % 2 === 1
      ? (column[mid] ?? Number.NaN)
      : ((column[mid - 1] ?? Number.NaN) + (column[mid] ?? Number.NaN)) / 2;
  });
}

/** A median round of 4 honest bias deltas near +0.1 and one flipped ×20, with the screen's exclusion on or off. */
async function roundWithFlippedUpdate(label: string, excludeFlagged: boolean) {
  const env = openEnv(label);
  const { task } = await env.createTask({
    taskId: label,
    adapter: SPEC,
    modules: MODULES,
    goalCount: 5,
    minReports: 2,
    strategy: { name: 'median', loraRule: 'fedit' },
    audit: { ...PERMISSIVE_AUDIT, madThreshold: 3.5, minCosine: 0, excludeFlagged },
  });
  const initial = initialAdapterTensors(task.adapter, MODULES);
  const random = testRandom(5);
  const honest = Array.from({ length: 4 }, () => deltaLike(initial, () => 0.1 + 0.02 * random()));
  const flipped = deltaLike(initial, () => -2);
  const deltas = [...honest, flipped];
  const refs = [];
  for (const [i, delta] of deltas.entries())
    refs.push(await env.storeDelta(delta, { updateId: `u${i}`, numExamples: 10 }));
  const event = await aggregateRetained(env, task.taskId, refs);
  const flippedDigest = refs.at(-1)?.blobDigest;
  const values = (delta: typeof flipped) => [...delta.values()].flatMap((t) => [...t.values]);
  return {
    env,
    event,
    flippedIndex: event.participants.findIndex((p) => p.blobDigest === flippedDigest),
    honestVectors: honest.map((d) => Float32Array.from(values(d))),
    allVectors: deltas.map((d) => Float32Array.from(values(d))),
  };
}

async function aggregateValues(
  env: ReturnType<typeof openEnv>,
  event: RoundLogEventOf<'aggregation'>,
): Promise<number[]> {
  const bytes = await env.blobs.get(event.aggregateDigest);
  if (!bytes) throw new Error('aggregate blob missing');
  return [...decodeFloat32Tensors(bytes).tensors.values()].flatMap((t) => [...t.values]);
}

describe('flagged updates left out of the aggregate (audit.excludeFlagged)', () => {
  it('aggregates the unflagged updates only, logs the flagged one with weight 0, and recomputes', async () => {
    const { env, event, flippedIndex, honestVectors } = await roundWithFlippedUpdate('fx-on', true);
    expect(flippedIndex).toBeGreaterThanOrEqual(0);
    expect(event.strategyOptions.screenedOut).toBe(String(flippedIndex));
    expect(event.participants.map((p) => p.weight)).toEqual(
      event.participants.map((_, i) => (i === flippedIndex ? 0 : 10)),
    );
    // The median of the 4 honest updates, computed here.
    const expected = coordinateMedian(honestVectors);
    const actual = await aggregateValues(env, event);
    expect(actual).toHaveLength(expected.length);
    for (const [j, value] of actual.entries()) expect(value).toBeCloseTo(expected[j] ?? Number.NaN, 6);
    const [audit] = env.log.ofType('audit');
    expect(audit?.findings.map((f) => f.message).join('\n')).toContain(
      '1 flagged update was left out of the aggregate (audit.excludeFlagged)',
    );
    expect(await recomputeAggregateDigest(event, env.blobs)).toBe(event.aggregateDigest);
  });

  it('does not recompute from a log that claims the flagged update was in, or names no participant', async () => {
    const { env, event, flippedIndex } = await roundWithFlippedUpdate('fx-tamper', true);
    const { screenedOut: _dropped, ...options } = event.strategyOptions;
    const claimedIn = {
      ...event,
      strategyOptions: options,
      participants: event.participants.map((p, i) => (i === flippedIndex ? { ...p, weight: 10 } : p)),
    };
    expect(await recomputeAggregateDigest(claimedIn, env.blobs)).not.toBe(event.aggregateDigest);
    const pastTheEnd = { ...event, strategyOptions: { ...event.strategyOptions, screenedOut: '7' } };
    await expect(recomputeAggregateDigest(pastTheEnd, env.blobs)).rejects.toThrow(/screenedOut/);
  });

  it('without the policy, flags the update but the median still takes all five', async () => {
    const { env, event, allVectors } = await roundWithFlippedUpdate('fx-off', false);
    expect(event.strategyOptions.screenedOut).toBeUndefined();
    expect(event.participants.every((p) => p.weight === 10)).toBe(true);
    const [audit] = env.log.ofType('audit');
    expect(audit?.findings.some((f) => f.code === 'low-cosine' || f.code === 'norm-outlier')).toBe(true);
    const expected = coordinateMedian(allVectors);
    for (const [j, value] of (await aggregateValues(env, event)).entries())
      expect(value).toBeCloseTo(expected[j] ?? Number.NaN, 6);
    expect(await recomputeAggregateDigest(event, env.blobs)).toBe(event.aggregateDigest);
  });
});
