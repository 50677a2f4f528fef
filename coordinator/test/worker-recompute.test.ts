import { describe, expect, it } from 'vitest';
import { initialAdapterTensors, type AdapterSpec, type TaskDefinitionInput } from '@flotilla/protocol';
import { recomputeAggregateDigest } from '../src/worker/job/aggregate-digest.js';
import {
  aggregateRetained,
  deltaLike,
  PERMISSIVE_AUDIT,
  testRandom,
  workerTestEnvs,
} from './support/index.js';

/** FFA-LoRA (A frozen from the shared seed) on the test module. */
const FFA_SPEC: AdapterSpec = { mode: 'ffa-lora', targetModules: ['hidden'], r: 2, alpha: 4, seed: 3 };

// An auditor holding the retained deltas re-runs the aggregation from the round log alone
// (strategy, options, participants and weights) and must land on the logged digest.
const openEnv = workerTestEnvs();

async function aggregationOf(options: {
  label: string;
  spec: AdapterSpec;
  strategy: TaskDefinitionInput['policy']['strategy'];
  dp?: TaskDefinitionInput['policy']['dp'];
  devices: number;
  /** FFA-LoRA devices may send A's zero delta: which ones do. */
  sendZeroA?: (device: number) => boolean;
  /** FFA-LoRA devices that (wrongly) change A: which ones do. */
  changeA?: (device: number) => boolean;
}) {
  const env = openEnv(options.label, options.dp ? { noiseSeed: 'recompute' } : {});
  const modules = { hidden: { in: 5, out: 4 } };
  const { task } = await env.createTask({
    taskId: options.label,
    adapter: options.spec,
    modules,
    goalCount: options.devices,
    minReports: 2,
    strategy: options.strategy,
    ...(options.dp ? { dp: options.dp } : {}),
    audit: PERMISSIVE_AUDIT,
  });
  const initial = initialAdapterTensors(task.adapter, modules);
  // FFA-LoRA devices send only what they train: B (A stays the shared seed).
  const sent = new Map(
    [...initial].filter(([name]) => options.spec.mode !== 'ffa-lora' || !name.endsWith('lora_A.weight')),
  );
  const random = testRandom(11);
  const refs = [];
  for (let i = 0; i < options.devices; i++) {
    const delta = deltaLike(sent, () => 0.05 * random());
    const a = options.changeA?.(i) ? 0.01 : options.sendZeroA?.(i) ? 0 : null;
    if (a !== null)
      for (const [name, tensor] of initial)
        if (name.endsWith('lora_A.weight'))
          delta.set(name, {
            shape: [...tensor.shape],
            values: new Float32Array(tensor.values.length).fill(a),
          });
    refs.push(await env.storeDelta(delta, { updateId: `u${i}`, numExamples: 10 + i }));
  }
  const event = await aggregateRetained(env, task.taskId, refs);
  return { env, event };
}

describe('recomputing a logged aggregate from retained deltas', () => {
  it('reproduces the digest of weighted FedAvg under the fedit rule', async () => {
    const { env, event } = await aggregationOf({
      label: 'rc-fedit',
      spec: { mode: 'lora', targetModules: ['hidden'], r: 2, alpha: 4, seed: 3 },
      strategy: { name: 'fedavg', loraRule: 'fedit' },
      devices: 5,
    });
    expect(event.deltasRetainedUntil).not.toBeNull();
    expect(await recomputeAggregateDigest(event, env.blobs)).toBe(event.aggregateDigest);
  });

  it('reproduces Multi-Krum under the ffa rule, and any changed weight changes the digest', async () => {
    const { env, event } = await aggregationOf({
      label: 'rc-ffa',
      spec: FFA_SPEC,
      strategy: { name: 'multi-krum', loraRule: 'ffa', byzantine: 1, keep: 3 },
      devices: 6,
    });
    expect(await recomputeAggregateDigest(event, env.blobs)).toBe(event.aggregateDigest);
    const kept = event.participants.findIndex((p) => p.weight > 0);
    const forged = {
      ...event,
      participants: event.participants.map((p, i) => (i === kept ? { ...p, weight: p.weight + 1 } : p)),
    };
    expect(await recomputeAggregateDigest(forged, env.blobs)).not.toBe(event.aggregateDigest);
  });

  // With A frozen the step is B's alone, whatever rule the policy names (fedit when it names
  // none), and the log says ffa, the rule that really ran.
  it.each([
    [
      'an FFA-LoRA adapter aggregated under the default rule (no loraRule named)',
      { label: 'rc-ffa-default', strategy: { name: 'fedavg' }, devices: 4 },
    ],
    [
      'an FFA-LoRA round in which some devices sent their zero lora_A delta',
      {
        label: 'rc-ffa-zero-a',
        strategy: { name: 'trimmed-mean', loraRule: 'fedit', beta: 0.2 },
        devices: 5,
        sendZeroA: (i: number) => i % 2 === 0,
      },
    ],
  ] as const)('reproduces %s', async (_round, options) => {
    const { env, event } = await aggregationOf({ spec: FFA_SPEC, ...options });
    expect(event.loraRule).toBe('ffa');
    expect(await recomputeAggregateDigest(event, env.blobs)).toBe(event.aggregateDigest);
  });

  it('excludes an FFA-LoRA update that changes the frozen A, and the round goes on without it', async () => {
    const { env, event } = await aggregationOf({
      label: 'rc-ffa-moved-a',
      spec: FFA_SPEC,
      strategy: { name: 'fedavg' },
      devices: 4,
      changeA: (i) => i === 1,
    });
    expect(event.participants).toHaveLength(3);
    expect(env.log.ofType('rejection')).toEqual([]);
    expect(await recomputeAggregateDigest(event, env.blobs)).toBe(event.aggregateDigest);
  });

  it('declines (null) when Gaussian noise makes the log alone insufficient', async () => {
    const { env, event } = await aggregationOf({
      label: 'rc-dp',
      spec: { mode: 'bias', targetModules: ['hidden'], r: 1, alpha: 1, seed: 3 },
      strategy: { name: 'fedavg', loraRule: 'fedit' },
      dp: { noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 100, populationSize: 100 },
      devices: 4,
    });
    expect(event.noiseMultiplier).toBe(1);
    expect(await recomputeAggregateDigest(event, env.blobs)).toBeNull();
  });
});
