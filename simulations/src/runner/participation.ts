import type { Rng } from '../rng/random.js';
import type { Scenario } from '../scenario/schema.js';

/** Who takes part in one round of a simulation, and who of them drops out after selection. */
export interface RoundParticipation {
  /** 0-based index of the round in the run. */
  index: number;
  participants: string[];
  /** Selected devices that will not report (simulated dropout). */
  dropouts: string[];
}

/**
 * The seeded participation schedule. Exactly `perRound` devices are eligible in round k (drawn
 * from the stream `participation/<k>`), so the coordinator selects the same devices in every run
 * with the same seed. Rounds listed in `offlineRounds` (1-based) have nobody online.
 */
export function participationFor(options: {
  rng: Rng;
  index: number;
  deviceIds: readonly string[];
  perRound: number;
  dropoutProbability: number;
  offlineRounds: readonly number[];
}): RoundParticipation {
  const { index } = options;
  if (options.offlineRounds.includes(index + 1)) return { index, participants: [], dropouts: [] };
  const rng = options.rng.fork(`participation/${index}`);
  const order = rng.permutation(options.deviceIds.length);
  const participants = order.slice(0, options.perRound).map((i) => options.deviceIds[i] ?? '');
  const dropRng = rng.fork('dropout');
  const dropouts = participants.filter(() => dropRng.next() < options.dropoutProbability);
  return { index, participants: [...participants].sort(), dropouts: dropouts.sort() };
}

/** Round `index` of a scenario's schedule (its devices per round, dropouts and offline rounds). */
export function scenarioParticipation(
  scenario: Pick<Scenario, 'devicesPerRound' | 'behaviour'>,
  rng: Rng,
  index: number,
  deviceIds: readonly string[],
): RoundParticipation {
  return participationFor({
    rng,
    index,
    deviceIds,
    perRound: scenario.devicesPerRound,
    dropoutProbability: scenario.behaviour.dropoutProbability,
    offlineRounds: scenario.behaviour.offlineRounds,
  });
}
