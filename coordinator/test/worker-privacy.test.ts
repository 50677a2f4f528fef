import { afterAll, describe, expect, it } from 'vitest';
import { decodeFloat32Tensors, initialAdapterTensors, type AdapterSpec } from '@flotilla/protocol';
import { processAggregateJob } from '../src/worker/job/process-aggregate-job.js';
import { DEFAULT_ORDERS, computeRdp, epsilonFromRdp } from '../src/worker/privacy/index.js';
import {
  createTestTask,
  deltaLike,
  jobData,
  storeDelta,
  testRandom,
  workerTestEnv,
  type TensorMap,
  type WorkerTestEnv,
} from './support/worker-fixtures.js';

const SPEC: AdapterSpec = { mode: 'bias', targetModules: ['hidden'], r: 1, alpha: 1, seed: 0 };
const OUT = 4000;
const MODULES = { hidden: { in: 2, out: OUT } };
const BIAS = 'base_model.model.hidden.bias';
const DELTA = 1e-5;
const CLIP = 1;
const M = 10;

/** ε of `steps` rounds of the sampled Gaussian mechanism, q = 10/100, z = 1 (RDP, improved conversion). */
function epsilonAfter(steps: number): number {
  const rdp = computeRdp({ q: 0.1, noiseMultiplier: 1, steps, orders: DEFAULT_ORDERS });
  return epsilonFromRdp({ orders: DEFAULT_ORDERS, rdp, delta: DELTA }).epsilon;
}
const num = (x: number): string => String(Number(x.toPrecision(4)));

const envs: WorkerTestEnv[] = [];
afterAll(() => {
  for (const env of envs) env.close();
});

function values(map: TensorMap): Float32Array {
  const t = map.get(BIAS);
  if (!t) throw new Error('no bias tensor');
  return t.values;
}

async function setUp(label: string, epsilonBudget: number) {
  const e = workerTestEnv(label, { noiseSeed: `seed-${label}` });
  envs.push(e);
  await createTestTask(e, {
    taskId: 'dp',
    adapter: SPEC,
    modules: MODULES,
    goalCount: M,
    minReports: 5,
    clipNorm: CLIP,
    dp: { noiseMultiplier: 1, delta: DELTA, epsilonBudget, populationSize: 100 },
  });
  return e;
}

async function round(e: WorkerTestEnv, roundNumber: number, parentVersion: number, seed: number) {
  const v0 = initialAdapterTensors(SPEC, MODULES);
  const rand = testRandom(seed);
  // Norm about 0.6 (under the clip bound 1): 4000 coordinates of ±0.01.
  const deltas = Array.from({ length: M }, () => deltaLike(v0, () => 0.01 * Math.sign(rand() + 0.2)));
  const refs = await Promise.all(
    // Distinct example counts: DP-FedAvg weighs every update 1, so they must not matter.
    deltas.map((d, k) => storeDelta(e.blobs, d, { updateId: `r${roundNumber}u${k}`, numExamples: k + 1 })),
  );
  const outcome = await processAggregateJob(
    jobData({ taskId: 'dp', roundNumber, parentVersion, clipNorm: CLIP, updates: refs }),
    e.deps,
    1_700_000_500_000 + roundNumber,
  );
  return { outcome, deltas };
}

describe('aggregation worker: differential privacy', () => {
  it('charges ε as the RDP accountant of q = 0.1, z = 1 and refuses the round that would pass the budget', async () => {
    const eps1 = epsilonAfter(1);
    const eps2 = epsilonAfter(2);
    expect(eps2).toBeGreaterThan(eps1);
    const budget = (eps1 + eps2) / 2;
    const e = await setUp('wk-dp', budget);

    const first = await round(e, 1, 0, 21);
    expect(first.outcome).toMatchObject({ decision: 'COMMITTED', version: 1 });
    const signed = await e.adapters.getManifest('dp', 1);
    if (!signed) throw new Error('no manifest');
    expect(signed.manifest.privacy?.epsilon).toBeCloseTo(eps1, 10);
    expect(signed.manifest.privacy?.delta).toBe(DELTA);
    expect(signed.manifest.metrics.epsilon).toBeCloseTo(eps1, 10);
    const aggregation = e.log.ofType('aggregation')[0];
    expect(aggregation?.epsilon).toBeCloseTo(eps1, 10);
    expect(aggregation?.noiseMultiplier).toBe(1);
    expect(aggregation?.participants.every((p) => p.weight === 1)).toBe(true);

    // Noise on the unweighted mean: N(0, (z·C/m)²) per coordinate.
    const bytes = await e.blobs.get(signed.manifest.adapter.f32.digest);
    if (!bytes) throw new Error('adapter blob missing');
    const adapter = values(decodeFloat32Tensors(bytes).tensors);
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < OUT; i++) {
      const mean = first.deltas.reduce((s, d) => s + (values(d)[i] ?? 0), 0) / M;
      const residual = (adapter[i] ?? NaN) - mean;
      sum += residual;
      squares += residual * residual;
    }
    const std = (1 * CLIP) / M;
    const sampleMean = sum / OUT;
    const sampleStd = Math.sqrt(squares / OUT - sampleMean * sampleMean);
    expect(Math.abs(sampleMean)).toBeLessThan((5 * std) / Math.sqrt(OUT));
    expect(Math.abs(sampleStd / std - 1)).toBeLessThan(0.06);

    const second = await round(e, 2, 1, 22);
    expect(second.outcome).toMatchObject({ decision: 'REJECTED', version: null });
    const reason = second.outcome.reasons.find((r) => r.startsWith('privacy budget exhausted'));
    expect(reason).toBe(
      `privacy budget exhausted: epsilon ${num(eps2)} at delta ${DELTA} would exceed the budget ${num(budget)}`,
    );
    expect(await e.adapters.listVersions('dp')).toEqual([1]);

    // A refused round spends nothing: the next candidate is again charged as the second step.
    const third = await round(e, 3, 1, 23);
    expect(third.outcome.decision).toBe('REJECTED');
    expect(third.outcome.reasons.join('\n')).toContain(`epsilon ${num(eps2)}`);
  });

  it('refuses the very first promotion when one round already exceeds a small budget', async () => {
    const eps1 = epsilonAfter(1);
    const e = await setUp('wk-dp-small', eps1 / 2);
    const { outcome } = await round(e, 1, 0, 31);
    expect(outcome).toMatchObject({ decision: 'REJECTED', version: null, manifestDigest: null });
    expect(outcome.reasons[0]).toBe(
      `privacy budget exhausted: epsilon ${num(eps1)} at delta ${DELTA} would exceed the budget ${num(eps1 / 2)}`,
    );
    expect(await e.adapters.listVersions('dp')).toEqual([]);
  });
});
