import { z } from 'zod';

const Seed = z.number().int().nonnegative();

/**
 * One seed per source of randomness, so a study can vary one and hold the others: e.g. new device
 * samples over the same base model and the same partition. Each defaults to the scenario's `seed`
 * (so a scenario that sets only `seed`, or a `--seed`/`--repeats` run, varies them all).
 */
export const ScenarioSeedsSchema = z
  .object({
    /** The base model's initial weights and pre-training order, and FFA-LoRA's frozen A. */
    model: Seed.optional(),
    /** Generated data and the split into pre-training, device pool, server holdout and test. */
    data: Seed.optional(),
    /** Which examples each device holds, which devices are Byzantine or slow, device keys. */
    partition: Seed.optional(),
    /** Which devices take part in each round, and which of them drop out. */
    sampling: Seed.optional(),
    /** Each device's batch order, and the randomness of attacks. */
    training: Seed.optional(),
    /** The worker's differential-privacy noise. */
    noise: Seed.optional(),
  })
  .strict();

export type SeedStream = keyof z.infer<typeof ScenarioSeedsSchema>;
export type ScenarioSeeds = Record<SeedStream, number>;

export const SEED_STREAMS: readonly SeedStream[] = [
  'model',
  'data',
  'partition',
  'sampling',
  'training',
  'noise',
];

/** Every stream's seed: the one set in `seeds`, else the scenario's `seed`. */
export function scenarioSeeds(scenario: {
  seed: number;
  seeds: Partial<Record<SeedStream, number>>;
}): ScenarioSeeds {
  const all = {} as ScenarioSeeds;
  for (const stream of SEED_STREAMS) all[stream] = scenario.seeds[stream] ?? scenario.seed;
  return all;
}
