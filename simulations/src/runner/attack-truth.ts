import type { LocalDataset } from '@flotilla/client';
import { backdoorTestSet, backdoorTrigger, type BackdoorTrigger } from '../attacks/backdoor.js';
import { detectionByRound } from '../attacks/ground-truth.js';
import type { TaskData } from '../data/task-data.js';
import type { AttackGroundTruth } from '../report/attack-metrics.js';
import type { Scenario } from '../scenario/schema.js';
import { readRoundLogEvents } from './round-log-events.js';
import { toLocalDataset } from './scenario-data.js';
import type { SimEnvironment } from './sim-environment.js';

/**
 * A backdoor run's trigger (derived from the devices' pool, so every host stamps the same one) and
 * its backdoor test set, or null for other attacks.
 */
export function scenarioBackdoor(
  scenario: Scenario,
  task: TaskData,
  inputShape: number[],
): { trigger: BackdoorTrigger; test: LocalDataset } | null {
  if (scenario.behaviour.attack !== 'backdoor') return null;
  const trigger = backdoorTrigger(task.pool);
  const target = scenario.behaviour.backdoor.targetClass;
  return { trigger, test: toLocalDataset(backdoorTestSet(task.test, { trigger, target }), inputShape) };
}

/**
 * The run's attack ground truth (null without an attack or attackers): the Byzantine devices and, per
 * aggregated round of the round log, what the audit and the strategy did to their updates.
 */
export async function attackGroundTruth(options: {
  scenario: Scenario;
  env: SimEnvironment;
  devices: ReadonlyArray<{ deviceId: string; byzantine: boolean }>;
}): Promise<AttackGroundTruth | null> {
  const { scenario, env } = options;
  if (scenario.behaviour.attack === 'none' || !options.devices.some((d) => d.byzantine)) return null;
  // The worker appends through its own writer: bring the file up to the Redis stream first.
  await env.roundLog.syncMirror();
  const attackers = options.devices
    .filter((d) => d.byzantine)
    .map((d) => ({ deviceId: d.deviceId, pseudonym: env.roundLog.pseudonymize(d.deviceId) }));
  const { rounds, total } = detectionByRound({
    events: readRoundLogEvents(env.roundLogPath),
    byzantine: new Set(attackers.map((a) => a.pseudonym)),
  });
  return { attack: scenario.behaviour.attack, attackers, rounds, total };
}
