import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeFloat32Tensors,
  type RoundLogEventOf,
  type RoundPlan,
  type SignedTask,
} from '@flotilla/protocol';
import { LocalDirBlobStore } from '../src/shared/blob-store/index.js';
import { auditVerifyCommand, exportRoundLog } from '../src/shared/round-log/index.js';
import { recomputeAggregateDigest } from '../src/worker/job/aggregate-digest.js';
import { loraDelta, ProcessCluster, type TestDevice } from './support/index.js';

// A device states its own numExamples, and FedAvg weighs by it. Before the cap one device
// claiming 2^53 − 1 examples became the whole aggregate. Against a coordinator process: the
// claim past the task's maximum is refused, and the weights the aggregate used (examples, or
// capped) are what the round log says, which an auditor's recomputation reproduces.

/** Every value of `loraDelta(norm)` is norm/√14 (14 = r·in + out·r for the test module). */
const valueOf = (norm: number) => norm / Math.sqrt(14);

/** Devices `attacker, ...honest`: all check in; the honest ones report norms 0.1, 0.2, 0.3 with 10, 11, 12 examples. */
async function openRoundWithHonestReports(
  cluster: ProcessCluster,
  devices: TestDevice[],
  taskId: string,
): Promise<{ attacker: TestDevice; plan: RoundPlan }> {
  const [attacker, ...honest] = devices;
  await cluster.firstRoundOpen(taskId);
  for (const d of devices)
    expect(await d.checkIn(taskId)).toMatchObject({ ok: true, data: { status: 'waiting' } });
  const plans = await Promise.all(devices.map((d) => d.waitForPlan(`${taskId}:1`, 20_000)));
  const plan = plans[0];
  if (!plan || !attacker) throw new Error('no plan');
  for (const [i, d] of honest.entries())
    expect(await d.report(plan, loraDelta(0.1 * (i + 1)), { numExamples: 10 + i })).toMatchObject({
      ok: true,
    });
  return { attacker, plan };
}

function aggregationOf(events: unknown[]): RoundLogEventOf<'aggregation'> {
  const found = events.find(
    (e): e is RoundLogEventOf<'aggregation'> => (e as { type?: string }).type === 'aggregation',
  );
  if (!found) throw new Error('no aggregation record');
  return found;
}

describe('numExamples is capped and weighed by the task policy (coordinator process)', () => {
  const cluster = new ProcessCluster('weights');

  beforeAll(async () => {
    await cluster.startCoordinator();
    await cluster.startWorker();
  });
  afterAll(() => cluster.stop());

  async function aggregateValues(digest: string): Promise<number[]> {
    const bytes = await cluster.worker?.blobs.get(digest);
    if (!bytes) throw new Error('aggregate blob missing');
    return [...decodeFloat32Tensors(bytes).tensors.values()].flatMap((t) => [...t.values]);
  }

  it('refuses a claim above maxExamplesPerUpdate (default maxSteps × batchSize) with EXAMPLES_EXCEEDED', async () => {
    await cluster.createTask('claims', { rounds: { maxSteps: 200 } });
    const devices = await cluster.enrollAndConnect('claim', 4);
    const { attacker, plan } = await openRoundWithHonestReports(cluster, devices, 'claims');
    const lie = await attacker.report(plan, loraDelta(0.9), { numExamples: 2 ** 53 - 1 });
    // A final refusal: every selected device has answered, the round closes.
    expect(lie).toMatchObject({ ok: false, error: { code: 'EXAMPLES_EXCEEDED' } });

    expect(await cluster.outcome('claims:1')).toMatchObject({ decision: 'COMMITTED' });
    const events = await cluster.events('claims:1');
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'update.refused', reason: 'EXAMPLES_EXCEEDED' }),
    );
    const aggregation = aggregationOf(events);
    expect(aggregation.participants.map((p) => p.weight).sort((a, b) => a - b)).toEqual([10, 11, 12]);
    expect(aggregation.strategyOptions).toMatchObject({
      weighting: 'examples',
      weightCap: null,
      maxExamplesPerUpdate: 1600,
    });
    // FedAvg of the honest three, computed here: Σ n·v / Σ n.
    const expected = (10 * valueOf(0.1) + 11 * valueOf(0.2) + 12 * valueOf(0.3)) / 33;
    for (const value of await aggregateValues(aggregation.aggregateDigest))
      expect(value).toBeCloseTo(expected, 6);
    for (const d of devices) d.disconnect();

    // The default is written into the signed task: 200 steps × batches of 8 examples.
    const task = (await (await fetch(`${cluster.url(0)}/api/tasks/claims`)).json()) as SignedTask;
    expect(task.task.policy.maxExamplesPerUpdate).toBe(1600);
  });

  it('weighs an allowed but inflated claim at the cap under `capped`, and the log recomputes with those weights', async () => {
    await cluster.createTask('capped', {
      policy: { weighting: { rule: 'capped', cap: 20 } },
    });
    const devices = await cluster.enrollAndConnect('capped', 4);
    const { attacker, plan } = await openRoundWithHonestReports(cluster, devices, 'capped');
    // 1600 is within maxExamplesPerUpdate: accepted, but weighed 20.
    expect(await attacker.report(plan, loraDelta(0.9), { numExamples: 1600 })).toMatchObject({ ok: true });

    expect(await cluster.outcome('capped:1')).toMatchObject({ decision: 'COMMITTED' });
    const aggregation = aggregationOf(await cluster.events('capped:1'));
    expect(aggregation.participants.map((p) => p.weight).sort((a, b) => a - b)).toEqual([10, 11, 12, 20]);
    expect(aggregation.strategyOptions).toMatchObject({ weighting: 'capped', weightCap: 20 });
    const expected = (10 * valueOf(0.1) + 11 * valueOf(0.2) + 12 * valueOf(0.3) + 20 * valueOf(0.9)) / 53;
    for (const value of await aggregateValues(aggregation.aggregateDigest))
      expect(value).toBeCloseTo(expected, 6);
    for (const d of devices) d.disconnect();

    // What `flotilla audit export` and `flotilla audit verify --blobs` do: both rounds'
    // aggregates are re-run from the retained deltas with the logged weights.
    const file = join(cluster.stateDir, 'export.jsonl');
    await exportRoundLog(cluster.redis, cluster.prefix, file);
    const blobs = new LocalDirBlobStore({ dir: join(cluster.stateDir, 'blobs') });
    const verdict = await auditVerifyCommand({
      file,
      json: true,
      recompute: (record) => recomputeAggregateDigest(record.event, blobs),
    });
    expect(JSON.parse(verdict.output)).toMatchObject({ ok: true, recomputed: 2 });
  });
});
