// The promote/reject gate end to end in the job processor (real Redis, blob store, round log
// records validated by the protocol schema): the drift limit as a trust region instead of a
// freeze, the holdout gain that overrides drift flags, the stop after too many rejections, passed
// checks that stay passed in a rejected round, and no per-update screening under DP.
import { describe, expect, it } from 'vitest';
import type { HoldoutMetrics } from '../src/worker/audit/index.js';
import { readTaskStop } from '../src/shared/task-stop.js';
import type { TensorMap as AdapterTensors } from '../src/shared/promotion/tensor-math.js';
import { deltaLike, hiddenBiasTask, testRandom, workerTestEnvs } from './support/index.js';
import type { TensorMap, WorkerTaskOptions, WorkerTestEnv } from './support/index.js';

const OUT = 64;
const { spec: SPEC, modules: MODULES, initial: v0, biasOf } = hiddenBiasTask({ in: 4, out: OUT });
/** The fixture's base bias is 1 everywhere: ‖b‖ = √OUT = 8. */
const BASE_BIAS_NORM = Math.sqrt(OUT);
const ENQUEUED_AT = 1_700_000_000_000;

const openEnv = workerTestEnvs();

async function setUp(label: string, options: Partial<WorkerTaskOptions> = {}): Promise<WorkerTestEnv> {
  const e = openEnv(label, { noiseSeed: `seed-${label}` });
  await e.createTask({ taskId: 'gate', adapter: SPEC, modules: MODULES, minReports: 3, ...options });
  return e;
}

const norm = (values: Float32Array) => Math.sqrt(values.reduce((s, v) => s + v * v, 0));

/**
 * Honest deltas of one round: a shared direction of norm `length` (positive coordinates), each
 * device's own variation, and `flipped` of them sign-flipped.
 */
function roundDeltas(seed: number, count: number, length: number, flipped = 0): TensorMap[] {
  const rand = testRandom(seed);
  const direction = Array.from({ length: OUT }, () => 1 + 0.5 * rand());
  const scale = length / norm(Float32Array.from(direction));
  return Array.from({ length: count }, (_, k) =>
    deltaLike(v0, (_, i) => (k < flipped ? -1 : 1) * scale * ((direction[i] ?? 0) + 0.4 * rand())),
  );
}

async function runRound(e: WorkerTestEnv, roundNumber: number, parentVersion: number, deltas: TensorMap[]) {
  const refs = await Promise.all(
    deltas.map((d, k) => e.storeDelta(d, { updateId: `r${roundNumber}u${k}`, numExamples: 20 + k })),
  );
  return e.runJob({ taskId: 'gate', roundNumber, parentVersion, updates: refs }, ENQUEUED_AT + roundNumber);
}

async function promotedBias(e: WorkerTestEnv, version: number): Promise<Float32Array> {
  return biasOf(await e.adapterTensors('gate', version));
}

/** A holdout on which every adapter whose bias moved scores `moved`, the untouched v0 `still`. */
function holdoutBy(moved: HoldoutMetrics, still: HoldoutMetrics) {
  return (_task: unknown, adapter: AdapterTensors): Promise<HoldoutMetrics> =>
    Promise.resolve(norm(biasOf(adapter)) > 0 ? moved : still);
}

/** Per-example results of 1,000 holdout examples: half right for both, then `extra` more. */
function correct(extra: number, offset = 0): Uint8Array {
  const out = new Uint8Array(1000);
  out.fill(1, 0, 500);
  out.fill(1, 500 + offset, 500 + offset + extra);
  return out;
}

describe('the promote/reject gate', () => {
  it('scales a step past the drift limit back onto it instead of rejecting every later round', async () => {
    // maxModuleDrift 0.25: the bias offset may reach ‖Δb‖ = 2. Each round moves it by ~1.5 in the
    // same direction, so from round 2 on every candidate is past the limit. A gate that rejects
    // such a candidate starts round 3 from the same version, and every later round, for good.
    const e = await setUp('gate-trust', { audit: { maxModuleDrift: 0.25 } });
    let version = 0;
    for (let r = 1; r <= 4; r++) {
      const outcome = await runRound(e, r, version, roundDeltas(100 + r, 5, 1.5));
      expect(outcome.decision, `round ${r}: ${outcome.reasons.join('; ')}`).toBe('COMMITTED');
      version = outcome.version ?? version;
      const drift = norm(await promotedBias(e, version)) / BASE_BIAS_NORM;
      expect(drift).toBeLessThanOrEqual(0.25);
      if (r >= 2) {
        expect(drift).toBeGreaterThan(0.2499);
        expect(outcome.reasons.join('\n')).toMatch(
          /module hidden: the candidate drifted 0\.\d+ from the base, above the limit 0\.25; its offset was scaled by 0\.\d+ onto the limit \(trust region\)/,
        );
      }
    }
    expect(version).toBe(4);
    const audits = e.log.ofType('audit');
    expect(audits.map((a) => a.metrics.trustRegionScale === undefined)).toEqual([true, false, false, false]);
  });

  it('logs the checks that passed as passed when a round is rejected', async () => {
    const e = await setUp('gate-passes');
    e.deps.evaluate = holdoutBy({ accuracy: 0.8 }, { accuracy: 0.9 });
    const outcome = await runRound(e, 1, 0, roundDeltas(7, 5, 0.5));
    expect(outcome.decision).toBe('REJECTED');
    const audit = e.log.ofType('audit')[0];
    expect(audit?.decision).toBe('fail');
    expect(audit?.findings.map((f) => [f.code, f.severity])).toEqual([
      ['flagged-fraction', 'info'],
      ['module-drift', 'info'],
      ['holdout', 'fail'],
    ]);
    expect(audit?.metrics).toMatchObject({ holdoutAccuracyCandidate: 0.8, holdoutAccuracyCurrent: 0.9 });
  });

  it('promotes a flagged round when the holdout shows the candidate better beyond noise', async () => {
    // 4 of 10 updates sign-flipped: 40% flagged, above the 34% limit. The candidate still gets 60
    // more of 1,000 holdout examples right than the current adapter, and none fewer (p < 1e-17).
    const e = await setUp('gate-gain', { goalCount: 10 });
    e.deps.evaluate = holdoutBy(
      { accuracy: 0.56, correct: correct(60), examples: 1000 },
      { accuracy: 0.5, correct: correct(0), examples: 1000 },
    );
    const outcome = await runRound(e, 1, 0, roundDeltas(11, 10, 0.5, 4));
    expect(outcome.decision, outcome.reasons.join('; ')).toBe('COMMITTED');
    expect(outcome.reasons[0]).toBe(
      '4 of 10 updates flagged (40%, limit 34%): promoted anyway, the holdout shows the candidate better beyond noise',
    );
    const audit = e.log.ofType('audit')[0];
    expect(audit?.findings.filter((f) => f.code === 'low-cosine')).toHaveLength(4);
    expect(audit?.findings.find((f) => f.code === 'flagged-fraction')?.severity).toBe('warn');
    expect(audit?.metrics.holdoutBetterBeyondNoise).toBe(1);

    // Without the gain (30 against 25 discordant examples is noise) the same round is rejected.
    const flat = await setUp('gate-flat', { goalCount: 10 });
    flat.deps.evaluate = holdoutBy(
      { accuracy: 0.53, correct: correct(30), examples: 1000 },
      { accuracy: 0.525, correct: correct(25, 30), examples: 1000 },
    );
    const rejected = await runRound(flat, 1, 0, roundDeltas(11, 10, 0.5, 4));
    expect(rejected.decision).toBe('REJECTED');
    expect(rejected.reasons[0]).toBe('4 of 10 updates flagged (40%, limit 34%)');
  });

  it('stops the task after maxConsecutiveRejections rejections in a row; a promotion resets the count', async () => {
    const e = await setUp('gate-stop', { audit: { maxConsecutiveRejections: 3 } });
    // Every round moves the bias further from the base (the same direction each time): scoring
    // by that distance makes each candidate worse than the adapter it started from.
    type Evaluate = (task: unknown, adapter: AdapterTensors) => Promise<HoldoutMetrics>;
    const worse: Evaluate = (_task, adapter) =>
      Promise.resolve({ accuracy: 0.9 - 0.1 * norm(biasOf(adapter)) });
    const same: Evaluate = holdoutBy({ accuracy: 0.9 }, { accuracy: 0.9 });
    const plan: Array<[number, number, Evaluate, 'COMMITTED' | 'REJECTED']> = [
      [1, 0, worse, 'REJECTED'],
      [2, 0, worse, 'REJECTED'],
      [3, 0, same, 'COMMITTED'],
      [4, 1, worse, 'REJECTED'],
      [5, 1, worse, 'REJECTED'],
    ];
    for (const [r, parent, evaluate, decision] of plan) {
      e.deps.evaluate = evaluate;
      const outcome = await runRound(e, r, parent, roundDeltas(20 + r, 4, 0.5));
      expect(outcome.decision, `round ${r}`).toBe(decision);
      expect(outcome.stopTask, `round ${r}`).toBeUndefined();
    }
    expect(await readTaskStop(e.redis, e.prefix, 'gate')).toBeNull();
    const stop =
      'the task stops: 3 rejections in a row since the last promotion (maxConsecutiveRejections 3)';
    const sixth = await runRound(e, 6, 1, roundDeltas(26, 4, 0.5));
    expect(sixth).toMatchObject({ decision: 'REJECTED', stopTask: stop });
    expect(sixth.reasons[0]).toBe(stop);
    expect(e.log.ofType('rejection').at(-1)?.reasons[0]).toBe(stop);
    expect((await readTaskStop(e.redis, e.prefix, 'gate'))?.reason).toBe(stop);
    // A retried job does not count twice.
    await e.redis.del(`${e.prefix}:round:gate:6:outcome`);
    expect((await runRound(e, 6, 1, roundDeltas(26, 4, 0.5))).reasons.filter((r) => r === stop)).toHaveLength(
      1,
    );
  });

  it("flags attackers that are half a round against the last promoted round's norms", async () => {
    const e = await setUp('gate-history', { goalCount: 10 });
    expect((await runRound(e, 1, 0, roundDeltas(41, 10, 0.5))).decision).toBe('COMMITTED');
    // Round 2: five of ten send 10·Δ. The round's own median norm is theirs as much as the honest
    // devices'; round 1's promoted updates say what an honest norm is.
    const deltas = roundDeltas(42, 10, 0.5).map((d, k) =>
      k < 5 ? d : deltaLike(d, (name, i) => 10 * (d.get(name)?.values[i] ?? 0)),
    );
    await runRound(e, 2, 1, deltas);
    const refs = e.log.ofType('aggregation')[1]?.participants ?? [];
    const flagged = (e.log.ofType('audit')[1]?.findings ?? []).filter((f) => f.code === 'norm-outlier');
    const boosted = new Set(
      (await Promise.all(deltas.map((d, k) => e.storeDelta(d, { updateId: `r2u${k}`, numExamples: 20 + k }))))
        .slice(5)
        .map((r) => r.blobDigest),
    );
    expect(new Set(flagged.map((f) => f.device))).toEqual(
      new Set(refs.filter((p) => boosted.has(p.blobDigest)).map((p) => p.device)),
    );
    expect(flagged).toHaveLength(5);
  });

  it('screens no update on its own in a DP task: no per-device finding, no norm statistic', async () => {
    const e = await setUp('gate-dp', {
      goalCount: 10,
      clipNorm: 1,
      dp: { noiseMultiplier: 0.5, delta: 1e-5, epsilonBudget: 100, populationSize: 100 },
    });
    const outcome = await runRound(e, 1, 0, roundDeltas(31, 10, 0.5, 4));
    const audit = e.log.ofType('audit')[0];
    expect(audit?.findings.filter((f) => f.device !== null)).toEqual([]);
    expect(audit?.findings.find((f) => f.code === 'screening')?.message).toMatch(
      /^differential privacy: updates are not screened one by one/,
    );
    expect(audit?.metrics).toMatchObject({ updates: 10, flagged: 0 });
    expect(audit?.metrics.normMedian).toBeUndefined();
    expect(outcome.reasons.join('\n')).not.toMatch(/dev_/);
  });
});
