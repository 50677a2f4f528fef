import { describe, expect, it } from 'vitest';
import { decodeDeltaFile, decodeFloat32Tensors } from '@flotilla/protocol';
import { parseScenario } from '../src/scenario/load.js';
import { tempDirs } from '../../test-support/temp-dirs.js';
import { readRunLog, simulate } from './support/index.js';

// Plain FedAvg (McMahan et al. 2017) with every safeguard switched off: no device validation gate,
// no clip bound, an audit that only records, quorum 1. The drift limit is set so low that the
// shipped audit would scale every round back (trust region): with the audit off it must not, so
// each promoted model is exactly the previous one plus the example-weighted mean of the deltas.
const scenario = parseScenario(`
name: plain-fedavg
seed: 3
devices: 4
devicesPerRound: 4
minReports: 1
rounds: 2
partition: { scheme: iid, maxExamplesPerDevice: 50 }
adapter: { mode: full, targetModules: [hidden, out] }
training: { maxSteps: 3, batchSize: 16, learningRate: 0.2, optimizer: sgd, validationTolerance: off }
clipNorm: none
audit: { enforce: false, maxModuleDrift: 0.0001 }
`);

const tempDir = tempDirs('flotilla-plain-');

type Tensors = Map<string, { shape: number[]; values: Float32Array }>;

describe('plain FedAvg: every safeguard off', () => {
  it('sends every update unclipped, promotes the plain weighted mean, and leaves a log that verifies', async () => {
    const stateDir = tempDir();
    const result = await simulate({ scenario, stateDir });
    for (const m of result.metrics.slice(1)) {
      expect(m.decision).toBe('COMMITTED');
      expect(m.participants).toBe(4);
      expect(m.refused).toEqual({});
    }
    // Each device's own holdout (20% of its 50 examples), scored with the final model.
    expect(result.perDevice?.devices.map((d) => d.examples)).toEqual([10, 10, 10, 10]);
    const accuracies = result.perDevice?.devices.map((d) => d.accuracy) ?? [];
    expect(result.perDevice?.summary.mean).toBeCloseTo(accuracies.reduce((a, b) => a + b, 0) / 4, 12);
    expect(result.perDevice?.summary.worst10).toBe(Math.min(...accuracies));

    const { records, blobs, problems } = await readRunLog(result);
    expect(problems).toEqual([]);

    // Signed tree-head lines carry no event.
    const events = records.flatMap((r): Array<Record<string, unknown>> => {
      const event = (r as { event?: Record<string, unknown> }).event;
      return event ? [event] : [];
    });
    const accepted = events.filter((e) => e.type === 'update.accepted');
    expect(accepted).toHaveLength(8);
    // Nothing clipped, though the deltas are far longer than the shipped bound of 1.
    expect(accepted.every((e) => e.clipped === false)).toBe(true);
    expect(Math.max(...accepted.map((e) => Number(e.norm)))).toBeGreaterThan(1);
    const audits = events.filter((e) => e.type === 'audit');
    expect(audits.map((e) => e.decision)).toEqual(['pass', 'pass']);
    const driftFindings = audits.flatMap((e) =>
      (e.findings as Array<{ code: string; severity: string }>).filter((f) => f.code === 'module-drift'),
    );
    expect(driftFindings.length).toBeGreaterThan(0);

    // Round 2: version 2 = version 1 + Σ nᵢΔᵢ / Σ nᵢ over its participants' retained deltas.
    const promotions = events.filter((e) => e.type === 'promotion');
    const adapter = async (digest: unknown): Promise<Tensors> =>
      decodeFloat32Tensors((await blobs.get(String(digest))) ?? new Uint8Array()).tensors;
    const v1 = await adapter(promotions[0]?.adapterDigest);
    const v2 = await adapter(promotions[1]?.adapterDigest);
    const aggregation = events.filter((e) => e.type === 'aggregation')[1];
    const participants = aggregation?.participants as Array<{ blobDigest: string; weight: number }>;
    const roundTwo = accepted.filter((e) => e.roundId === aggregation?.roundId);
    let total = 0;
    const sums = new Map<string, Float64Array>();
    for (const p of participants) {
      const examples = Number(roundTwo.find((e) => e.blobDigest === p.blobDigest)?.numExamples);
      expect(p.weight).toBe(examples);
      total += examples;
      const delta = decodeDeltaFile((await blobs.get(p.blobDigest)) ?? new Uint8Array()).tensors;
      for (const [name, tensor] of delta) {
        const sum = sums.get(name) ?? new Float64Array(tensor.values.length);
        tensor.values.forEach((v, i) => (sum[i] = (sum[i] ?? 0) + examples * v));
        sums.set(name, sum);
      }
    }
    expect(sums.size).toBe(v2.size);
    let worst = 0;
    for (const [name, sum] of sums) {
      const before = v1.get(name)?.values;
      const after = v2.get(name)?.values;
      expect(before && after).toBeTruthy();
      sum.forEach((s, i) => {
        const expected = (before?.[i] ?? 0) + s / total;
        worst = Math.max(worst, Math.abs((after?.[i] ?? Number.NaN) - expected));
      });
    }
    // float32 sums: a few ulps of weights around 0.1–1.
    expect(worst).toBeLessThan(1e-5);
  }, 240_000);
});
