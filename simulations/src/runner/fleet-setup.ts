import { FlotillaError, toBase64 } from '@flotilla/protocol';
import type { DeviceRegistry } from '@flotilla/coordinator/server';
import { chooseByzantineDevices } from '../attacks/attacks.js';
import type { TaskData } from '../data/task-data.js';
import { capPartition, partitionExamples } from '../partition/index.js';
import { createRng } from '../rng/random.js';
import type { Scenario } from '../scenario/schema.js';
import { scenarioSeeds } from '../scenario/seeds.js';
import { deviceKeySeed, publicKeyFromSeed } from './device-keys.js';
import type { VirtualDeviceSpec } from './host-messages.js';

/** Enrolment requests in flight at once: enough to hide Redis round trips, few enough to stay polite. */
const ENROLL_CONCURRENCY = 256;

/** The id of device `index` of a run (zero-padded to four digits, wider past 9,999). */
export const simDeviceId = (index: number): string => `device-${String(index).padStart(4, '0')}`;

/**
 * Every device of the scenario as a dormant spec: its data shard (training indices and a local
 * holdout for its validation gate), its key seed, and whether it is Byzantine or a straggler.
 * Data with a natural per-user split gives device i the examples of user i; other data is split
 * by the scenario's partition scheme.
 */
export function deviceSpecs(scenario: Scenario, task: TaskData): VirtualDeviceSpec[] {
  const seeds = scenarioSeeds(scenario);
  const rng = createRng(seeds.partition);
  const pool = task.pool;
  if (task.users && task.users.ids.length < scenario.devices)
    throw new FlotillaError(
      'BAD_REQUEST',
      `the data has ${task.users.ids.length} users for devices; the scenario asks for ${scenario.devices} devices`,
    );
  const shards = task.users
    ? task.users.indices.slice(0, scenario.devices)
    : partitionExamples({
        scheme: scenario.partition.scheme,
        labels: pool.ys,
        numDevices: scenario.devices,
        rng: rng.fork('partition'),
        ...(scenario.partition.alpha !== undefined ? { alpha: scenario.partition.alpha } : {}),
        ...(scenario.partition.shardsPerDevice !== undefined
          ? { shardsPerDevice: scenario.partition.shardsPerDevice }
          : {}),
        ...(scenario.partition.sigma !== undefined ? { sigma: scenario.partition.sigma } : {}),
        minPerDevice: scenario.partition.minPerDevice,
      });
  const partition = capPartition(shards, scenario.partition.maxExamplesPerDevice);
  const byzantine = new Set(
    chooseByzantineDevices({
      numDevices: scenario.devices,
      fraction: scenario.behaviour.byzantineFraction,
      rng: rng.fork('byzantine'),
    }),
  );
  const stragglerRng = rng.fork('stragglers');
  return partition.map((indices, i) => {
    const holdoutCount = Math.floor(indices.length * scenario.partition.holdoutFraction);
    return {
      deviceId: simDeviceId(i),
      seedKey: toBase64(deviceKeySeed(rng, i)),
      trainIndices: indices.slice(holdoutCount),
      holdoutIndices: indices.slice(0, holdoutCount),
      byzantine: byzantine.has(i),
      straggler: stragglerRng.next() < scenario.behaviour.stragglerFraction,
      seed: seeds.training * 1000 + i,
    };
  });
}

/** Enrols every device's public key with the coordinator, `ENROLL_CONCURRENCY` at a time. */
export async function enrollDevices(
  registry: Pick<DeviceRegistry, 'registerDevice'>,
  specs: readonly VirtualDeviceSpec[],
  onProgress: (done: number) => void = () => undefined,
): Promise<void> {
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < specs.length; i = next++) {
      const spec = specs[i];
      if (!spec) continue;
      const publicKey = publicKeyFromSeed(Buffer.from(spec.seedKey, 'base64'));
      await registry.registerDevice({ deviceId: spec.deviceId, publicKey: toBase64(publicKey) });
      onProgress(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(ENROLL_CONCURRENCY, specs.length) }, worker));
}
