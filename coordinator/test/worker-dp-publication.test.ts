import { describe, expect, it } from 'vitest';
import { initialAdapterTensors, type AdapterSpec } from '@flotilla/protocol';
import { processAggregateJob } from '../src/worker/job/process-aggregate-job.js';
import { deltaLike, jobData, testRandom, workerTestEnvs } from './support/index.js';

// In a DP task, what the worker publishes about a round is a function of the noised aggregate and
// public data only (docs/privacy.md): no update is screened or named one by one, and FedIT's
// exactness diagnostic, which compares each device's own factors with the mean, stays unpublished.

const SPEC: AdapterSpec = { mode: 'lora', targetModules: ['hidden'], r: 2, alpha: 2, seed: 3 };
const MODULES = { hidden: { in: 6, out: 5 } };
const M = 10;

const openEnv = workerTestEnvs();

async function runRound(label: string, dp: boolean) {
  const e = openEnv(label, { noiseSeed: `seed-${label}` });
  // The holdout neither helps nor hurts: every candidate may be promoted.
  e.deps.evaluate = () => Promise.resolve({ accuracy: 0.5, loss: 1 });
  await e.createTask({
    taskId: 'pub',
    adapter: SPEC,
    modules: MODULES,
    goalCount: M,
    minReports: 5,
    clipNorm: 1,
    strategy: { name: 'fedavg', loraRule: 'fedit' },
    ...(dp ? { dp: { noiseMultiplier: 0.3, delta: 1e-5, epsilonBudget: 100, populationSize: M } } : {}),
  });
  const v0 = initialAdapterTensors(SPEC, MODULES);
  const rand = testRandom(9);
  // Nine similar small updates and one opposite one.
  const deltas = Array.from({ length: M }, (_, k) =>
    deltaLike(v0, (name) => (name.endsWith('lora_B.weight') ? (k === 0 ? -0.15 : 0.01 + 0.002 * rand()) : 0)),
  );
  const refs = await Promise.all(
    deltas.map((d, k) => e.storeDelta(d, { updateId: `u${k}`, numExamples: 5 + k })),
  );
  const outcome = await processAggregateJob(
    jobData({ taskId: 'pub', roundNumber: 1, parentVersion: 0, clipNorm: 1, updates: refs }),
    e.deps,
    1_700_000_600_000,
  );
  const [aggregation] = e.log.ofType('aggregation');
  const [audit] = e.log.ofType('audit');
  if (!aggregation || !audit) throw new Error('no aggregation or audit record');
  const manifest = outcome.version === null ? null : await e.adapters.getManifest('pub', outcome.version);
  return { outcome, aggregation, audit, manifest, pseudonyms: refs.map((r) => r.devicePseudonym) };
}

/** Everything the round published about its updates: the audit record, the outcome and the manifest. */
function published(round: Awaited<ReturnType<typeof runRound>>): string {
  return JSON.stringify([round.audit, round.outcome, round.manifest?.manifest ?? null]);
}

describe('what a DP task publishes about individual updates', () => {
  it('without DP the outlier update is named with its scores; with DP no device is named and no per-update statistic appears', async () => {
    const plain = await runRound('pub-screen-nodp', false);
    expect(plain.audit.findings.some((f) => f.device !== null && f.value !== null)).toBe(true);
    expect(plain.pseudonyms.some((p) => published(plain).includes(p))).toBe(true);
    expect(plain.audit.metrics).toHaveProperty('normMedian');

    const dp = await runRound('pub-screen-dp', true);
    expect(dp.audit.findings.filter((f) => f.device !== null)).toEqual([]);
    expect(dp.pseudonyms.filter((p) => published(dp).includes(p))).toEqual([]);
    expect(dp.audit.metrics).not.toHaveProperty('normMedian');
    expect(dp.audit.metrics.flagged ?? 0).toBe(0);
  });

  it("FedIT's per-device exactness diagnostic is published without DP, and withheld with DP", async () => {
    const plain = await runRound('pub-nodp', false);
    expect(typeof plain.aggregation.strategyOptions.feditRelativeError).toBe('number');
    expect(plain.manifest?.manifest.metrics).toHaveProperty('feditRelativeError');

    const dp = await runRound('pub-dp', true);
    expect(dp.outcome.decision).toBe('COMMITTED');
    expect(dp.aggregation.strategyOptions.feditRelativeError).toBeNull();
    expect(dp.manifest?.manifest.metrics).not.toHaveProperty('feditRelativeError');
    // What the round released, as the accountant charged it: the sum of clipped updates with
    // noise std z·C (z = 0.3, C = 1), nothing else.
    expect(dp.aggregation.privacy?.releases).toEqual([
      { query: 'update-sum', sensitivity: 1, noiseStd: 0.3 },
    ]);
  });
});
