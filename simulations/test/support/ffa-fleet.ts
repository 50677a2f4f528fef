import { validateScenario } from '../../src/scenario/load.js';
import type { Scenario, ScenarioInput } from '../../src/scenario/schema.js';

/**
 * The small fleet the end-to-end tests run: four devices, all in every round (quorum 3), 40 IID
 * examples each, training FFA-LoRA (r 4, alpha 8) on both layers of the simulation MLP for three
 * SGD steps, aggregated by FedAvg with the FFA rule (averaging B alone is exact). A test names
 * its run and sets what it is about (seed, rounds, size, privacy, behaviour).
 */
export function ffaFleet(fields: Partial<ScenarioInput> & Pick<ScenarioInput, 'name'>): Scenario {
  return validateScenario({
    devices: 4,
    devicesPerRound: 4,
    minReports: 3,
    partition: { scheme: 'iid', maxExamplesPerDevice: 40 },
    adapter: { mode: 'ffa-lora', r: 4, alpha: 8, targetModules: ['hidden', 'out'] },
    training: { maxSteps: 3, batchSize: 16, learningRate: 0.03 },
    strategy: { name: 'fedavg', loraRule: 'ffa' },
    ...fields,
  });
}
