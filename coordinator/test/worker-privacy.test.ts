import { describe, expect, it } from 'vitest';
import { privacyLedger } from '@flotilla/protocol';
import type { RoundOutcome } from '../src/shared/round-outcomes.js';
import { readTaskStop } from '../src/shared/task-stop.js';
import { readWorkerState } from '../src/worker/job/worker-state.js';
import { erfc } from '../src/worker/privacy/index.js';
import { deltaLike, hiddenBiasTask, testRandom, workerTestEnvs } from './support/index.js';
import type { TensorMap, WorkerTaskOptions, WorkerTestEnv } from './support/index.js';

// Every noised aggregate that is computed is a release (DESIGN.md): it is charged whether the
// candidate is promoted or rejected, once per round, before anything about it is published; a
// round the budget cannot pay for computes nothing and stops the task.

const OUT = 4000;
const { spec: SPEC, modules: MODULES, initial: v0, biasOf: values } = hiddenBiasTask({ in: 2, out: OUT });
const CLIP = 1;
const M = 10;

// Published reference (TF Privacy / dp_accounting rdp_privacy_accountant_test.py,
// test_compute_epsilon_delta_gaussian): the Gaussian mechanism with noise multiplier 4.530877117
// is exactly (1, 1e-6)-DP through RDP. T unamplified rounds at z compose to one Gaussian at z/√T,
// so four rounds at z = 2 · 4.530877117 must come to ε = 1 at δ = 1e-6.
const Z_ONE = 4.530877117;
const DELTA = 1e-6;
const ROUNDS = 4;
const Z_ROUND = Z_ONE * Math.sqrt(ROUNDS);

const openEnv = workerTestEnvs();

const isZero = (adapter: TensorMap): boolean => values(adapter).every((v) => v === 0);

/**
 * A task whose holdout says every candidate is worse than the initial (all-zero) adapter, so every
 * candidate is rejected for its accuracy drop and every round starts from version 0 again.
 */
async function setUp(
  label: string,
  /** The task's budget under the default DP policy (z = Z_ROUND), or a DP policy of its own. */
  options: { noiseSeed?: string } & (
    { epsilonBudget: number } | { dp: NonNullable<WorkerTaskOptions['dp']> }
  ),
) {
  const e = openEnv(label, options.noiseSeed !== undefined ? { noiseSeed: options.noiseSeed } : {});
  e.deps.evaluate = (_task, adapter) => Promise.resolve({ accuracy: isZero(adapter) ? 0.9 : 0.1, loss: 1 });
  await e.createTask({
    taskId: 'dp',
    adapter: SPEC,
    modules: MODULES,
    goalCount: M,
    minReports: 5,
    clipNorm: CLIP,
    dp:
      'dp' in options
        ? options.dp
        : {
            noiseMultiplier: Z_ROUND,
            delta: DELTA,
            epsilonBudget: options.epsilonBudget,
            populationSize: 100,
          },
  });
  return e;
}

async function round(e: WorkerTestEnv, roundNumber: number, seed: number) {
  const rand = testRandom(seed);
  // Norm about 0.6 (under the clip bound 1): 4000 coordinates of ±0.01.
  const deltas = Array.from({ length: M }, () => deltaLike(v0, () => 0.01 * Math.sign(rand() + 0.2)));
  const refs = await Promise.all(
    deltas.map((d, k) => e.storeDelta(d, { updateId: `r${roundNumber}u${k}`, numExamples: k + 1 })),
  );
  const job = { taskId: 'dp', roundNumber, parentVersion: 0, clipNorm: CLIP, updates: refs };
  return { job, deltas, run: () => e.runJob(job, 1_700_000_500_000 + roundNumber) };
}

/** Exact δ(ε) of the Gaussian mechanism with μ = sensitivity/σ (Balle & Wang 2018, Theorem 8). */
function exactGaussianDelta(epsilon: number, mu: number): number {
  const phi = (x: number): number => erfc(-x / Math.SQRT2) / 2;
  return phi(mu / 2 - epsilon / mu) - Math.exp(epsilon) * phi(-mu / 2 - epsilon / mu);
}

describe('aggregation worker: ε counts every noised aggregate', () => {
  it('charges rejected candidates too, as unamplified Gaussian releases (4 rounds at 2·4.530877117 give ε = 1 at δ = 1e-6)', async () => {
    const e = await setUp('wk-dp-charge', { epsilonBudget: 1.0000005 });
    const outcomes: RoundOutcome[] = [];
    for (let k = 1; k <= ROUNDS; k++) outcomes.push(await (await round(e, k, 20 + k)).run());
    expect(outcomes.map((o) => o.decision)).toEqual(['REJECTED', 'REJECTED', 'REJECTED', 'REJECTED']);
    expect(await e.adapters.listVersions('dp')).toEqual([]);

    const aggregations = e.log.ofType('aggregation');
    expect(aggregations).toHaveLength(ROUNDS);
    const epsilons = aggregations.map((a) => a.epsilon ?? Number.NaN);
    // Published value after four charged rounds, to the precision of the default Rényi orders.
    expect(Math.abs((epsilons.at(-1) ?? 0) - 1)).toBeLessThan(1e-6);
    epsilons.forEach((epsilon, k) => {
      // Strictly more after every release; never below the exact Gaussian curve (a valid bound).
      if (k > 0) expect(epsilon).toBeGreaterThan(epsilons[k - 1] ?? Infinity);
      expect(exactGaussianDelta(epsilon, Math.sqrt(k + 1) / Z_ROUND)).toBeLessThanOrEqual(DELTA);
      // The outcome (what the simulation report shows) carries the same ε.
      expect(outcomes[k]?.privacy).toEqual({ epsilon, delta: DELTA });
    });
    aggregations.forEach((a, k) => {
      expect(a.privacy).toMatchObject({
        accountant: 'rdp-gaussian',
        relation: 'zero-out',
        sampling: 'fixed-size',
        amplification: 'none',
        conversion: 'improved',
        chargedRounds: k + 1,
        releases: [{ query: 'update-sum', sensitivity: CLIP, noiseStd: Z_ROUND * CLIP }],
      });
    });
    // The log alone gives the same ε, record by record, with no disagreement.
    const ledger = privacyLedger(
      e.log.events.map((event, seq) => ({ seq, event })),
      'dp',
    );
    expect(ledger.problems).toEqual([]);
    expect(ledger.rounds.map((r) => r.decision)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    // Same arithmetic, summed in another order: equal to float precision.
    expect(Math.abs(ledger.epsilon / (epsilons.at(-1) ?? 0) - 1)).toBeLessThan(1e-12);

    // The fifth release would pass the budget: nothing is computed, the task stops, ε stays put.
    const fifth = await (await round(e, 5, 25)).run();
    expect(fifth.decision).toBe('REJECTED');
    expect(fifth.reasons[0]).toMatch(
      /^privacy budget exhausted: computing this round's noised aggregate would take epsilon from 1 to 1\.127 at delta 0\.000001, past the budget 1; nothing was computed and the task stops$/,
    );
    expect(fifth.privacy?.epsilon).toBe(epsilons.at(-1));
    expect(e.log.ofType('aggregation')).toHaveLength(ROUNDS);
    expect(fifth.stopTask).toBe(fifth.reasons[0]);
    expect((await readTaskStop(e.redis, e.prefix, 'dp'))?.reason).toBe(fifth.reasons[0]);
  });

  it('refuses the very first round when one release already exceeds the budget, and stops the task', async () => {
    const e = await setUp('wk-dp-small', { epsilonBudget: 0.4 });
    const first = await (await round(e, 1, 31)).run();
    expect(first).toMatchObject({ decision: 'REJECTED', version: null, manifestDigest: null });
    expect(first.reasons[0]).toMatch(
      /^privacy budget exhausted: computing this round's noised aggregate would take epsilon from 0 to /,
    );
    expect(first.privacy).toEqual({ epsilon: 0, delta: DELTA });
    expect(e.log.ofType('aggregation')).toEqual([]);
    expect(await readTaskStop(e.redis, e.prefix, 'dp')).not.toBeNull();
  });

  it('a retried job reuses its stored noised aggregate and charges it once', async () => {
    // No noise seed: the noise comes from the CSPRNG, so a recomputation could not match.
    const e = await setUp('wk-dp-retry', { epsilonBudget: 10 });
    const { job } = await round(e, 1, 41);
    let crashes = 1;
    e.deps.afterAggregation = () => {
      if (crashes-- > 0) return Promise.reject(new Error('worker killed after the aggregation record'));
      return Promise.resolve();
    };
    await expect(e.runJob(job, 1_700_000_500_001)).rejects.toThrow('worker killed');
    const retried = await e.runJob(job, 1_700_000_500_001);
    expect(retried.decision).toBe('REJECTED');

    const [first, second] = e.log.ofType('aggregation');
    expect(second?.aggregateDigest).toBe(first?.aggregateDigest);
    expect(second?.epsilon).toBe(first?.epsilon);
    expect(second?.privacy?.chargedRounds).toBe(1);
    const state = await readWorkerState(e.redis, e.prefix, 'dp', e.blobs);
    expect(state.accountant?.history).toEqual([{ q: 1, noiseMultiplier: Z_ROUND, steps: 1 }]);
    const ledger = privacyLedger(
      e.log.events.map((event, seq) => ({ seq, event })),
      'dp',
    );
    expect(ledger.rounds).toHaveLength(1);
    expect(ledger.problems).toEqual([]);
  });

  it("records adaptive clipping's noised count as a second release, and charges the pair as z", async () => {
    // z = 0.8 with m = 10: σ_b = m/20 = 0.5 and z_Δ = (0.8⁻² − 1)^(−1/2) = 4/3 (Andrew et al. 2021).
    const e = await setUp('wk-dp-adaptive', {
      noiseSeed: 'seed-adaptive',
      dp: { noiseMultiplier: 0.8, delta: DELTA, epsilonBudget: 100, adaptiveClip: {} },
    });
    await (await round(e, 1, 61)).run();
    const [aggregation] = e.log.ofType('aggregation');
    const [sum, count] = aggregation?.privacy?.releases ?? [];
    expect(sum?.query).toBe('update-sum');
    expect(sum?.noiseStd).toBeCloseTo(4 / 3, 12);
    expect(count).toEqual({ query: 'unclipped-count', sensitivity: 0.5, noiseStd: 0.5 });
    // The pair costs what one Gaussian release at z = 0.8 costs: ρ = 1/(2·0.8²).
    const ledger = privacyLedger(
      e.log.events.map((event, seq) => ({ seq, event })),
      'dp',
    );
    expect(ledger.problems).toEqual([]);
    expect(ledger.rounds[0]?.rho).toBeCloseTo(1 / (2 * 0.8 * 0.8), 12);
  });

  it('adds noise N(0, (z·C/m)²) to the unweighted mean of the clipped updates', async () => {
    const e = await setUp('wk-dp-noise', { epsilonBudget: 10, noiseSeed: 'seed-noise' });
    // Accept every candidate here: the noise is measured on the promoted adapter.
    e.deps.evaluate = () => Promise.resolve({ accuracy: 0.5, loss: 1 });
    const { run, deltas } = await round(e, 1, 51);
    const outcome = await run();
    expect(outcome).toMatchObject({ decision: 'COMMITTED', version: 1 });
    const signed = await e.adapters.getManifest('dp', 1);
    if (!signed) throw new Error('no manifest');
    expect(signed.manifest.privacy?.epsilon).toBe(outcome.privacy?.epsilon);
    const aggregation = e.log.ofType('aggregation')[0];
    expect(aggregation?.participants.every((p) => p.weight === 1)).toBe(true);
    const adapter = values(await e.adapterTensors('dp', 1));
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < OUT; i++) {
      const mean = deltas.reduce((s, d) => s + (values(d)[i] ?? 0), 0) / M;
      const residual = (adapter[i] ?? NaN) - mean;
      sum += residual;
      squares += residual * residual;
    }
    const std = (Z_ROUND * CLIP) / M;
    const sampleMean = sum / OUT;
    const sampleStd = Math.sqrt(squares / OUT - sampleMean * sampleMean);
    expect(Math.abs(sampleMean)).toBeLessThan((5 * std) / Math.sqrt(OUT));
    expect(Math.abs(sampleStd / std - 1)).toBeLessThan(0.06);
  });
});
