// The audit-precision suite: the honest non-IID runs on which the drift audit must stay quiet, and
// the attacked runs on which it must flag the attackers while a robust strategy keeps training.
import { ScenarioSchema, type Scenario, type ScenarioInput } from '../scenario/schema.js';

/** What a case measures: honest precision, attacker recall, or the attack-free accuracy reference. */
export type CaseKind = 'honest' | 'attack' | 'attack-free';

export interface PrecisionCase {
  /** Stable name, e.g. `sign-flip-30`. */
  name: string;
  kind: CaseKind;
  /** Scenario for seed 1; the runner overrides the seed. */
  scenario: Scenario;
}

/** The run sizes: `full` for docs/results.md, `reduced` for `npm test`. */
export type SuiteSize = 'full' | 'reduced';

/**
 * Default clip bound of the attacked runs (and their attack-free reference): above every honest
 * update's norm (3 to 5 for this model and step budget), so that the bound does not hide the
 * attacks. `--clip-norm 1` runs them at the built-in scenarios' C = 1 instead, where every update
 * has norm 1 and only its direction can give an attacker away. The honest non-IID runs always
 * keep C = 1.
 */
export const ATTACK_CLIP_NORM = 100;

/** Options of {@link precisionSuite}. */
export interface SuiteOptions {
  /** Clip bound C of the attacked runs and the attack-free reference. Default {@link ATTACK_CLIP_NORM}. */
  clipNorm?: number;
}

/** The robust strategy of the attacked runs: the coordinate-wise median (Yin et al. 2018). */
export const ROBUST_STRATEGY: ScenarioInput['strategy'] = { name: 'median', loraRule: 'ffa' };

function size(kind: SuiteSize): Partial<ScenarioInput> {
  return kind === 'full'
    ? {
        devices: 20,
        devicesPerRound: 10,
        minReports: 6,
        rounds: 20,
        training: { epochs: 1, batchSize: 32, learningRate: 0.03, optimizer: 'adam', maxSteps: 20 },
      }
    : {
        devices: 10,
        devicesPerRound: 10,
        minReports: 4,
        rounds: 3,
        training: { epochs: 1, batchSize: 16, learningRate: 0.03, optimizer: 'adam', maxSteps: 5 },
      };
}

function scenario(name: string, kind: SuiteSize, input: Partial<ScenarioInput>): Scenario {
  return ScenarioSchema.parse({
    name,
    description: `audit-precision case ${name}`,
    seed: 1,
    dataset: 'mnist-rotated',
    adapter: { mode: 'ffa-lora', r: 16, alpha: 32, targetModules: ['hidden', 'out'] },
    ...size(kind),
    ...input,
    partition: {
      maxExamplesPerDevice: kind === 'full' ? 200 : 80,
      ...(input.partition ?? {}),
    },
  });
}

const ATTACKS = [
  { attack: 'sign-flip', attackScale: 4 },
  // A scaling attacker that clipped would send exactly the honest clipped update whenever the
  // bound binds (C = 1): it sends 10·Δ unclipped, and the coordinator refuses it above the bound.
  { attack: 'scaling', attackScale: 10, attackerClips: false },
  { attack: 'little-is-enough' },
] as const;

/** Every case of the suite at `kind` size. */
export function precisionSuite(kind: SuiteSize, options: SuiteOptions = {}): PrecisionCase[] {
  const honest = (name: string, partition: ScenarioInput['partition']): PrecisionCase => ({
    name,
    kind: 'honest',
    scenario: scenario(name, kind, { partition, strategy: { name: 'fedavg', loraRule: 'ffa' }, clipNorm: 1 }),
  });
  const attacked = (input: Partial<ScenarioInput>): Partial<ScenarioInput> => ({
    partition: { scheme: 'iid' },
    strategy: ROBUST_STRATEGY,
    clipNorm: options.clipNorm ?? ATTACK_CLIP_NORM,
    // Honest devices' validation gates off, so each round's attacker share is what the selection
    // gives: attackers never skip, and honest devices whose small local holdouts make them skip
    // would otherwise hand the attackers a majority in late rounds.
    training: { ...size(kind).training, validationTolerance: 1e9 },
    // Flagged updates are left out of the aggregate, not only recorded: the median then meets
    // only the attackers the screen missed. Not in the honest runs: under FedAvg on non-IID data,
    // leaving out the devices whose labels oppose the rest pulls each step further from them, and
    // more of them are flagged the next round (honest-2-labels seed 1: 19 of 200 with it; seeds
    // 1 and 3 together: 13 of 400 without it).
    audit: { excludeFlagged: true },
    ...input,
  });
  const cases: PrecisionCase[] = [
    honest('honest-dirichlet-0.1', {
      scheme: 'dirichlet',
      alpha: 0.1,
      minPerDevice: kind === 'full' ? 10 : 5,
    }),
    honest('honest-2-labels', { scheme: 'shards', shardsPerDevice: 2 }),
    { name: 'attack-free', kind: 'attack-free', scenario: scenario('attack-free', kind, attacked({})) },
  ];
  for (const fraction of [0.2, 0.3])
    for (const { attack, ...rest } of ATTACKS) {
      const name = `${attack}-${Math.round(100 * fraction)}`;
      cases.push({
        name,
        kind: 'attack',
        scenario: scenario(
          name,
          kind,
          attacked({ behaviour: { byzantineFraction: fraction, attack, ...rest } }),
        ),
      });
    }
  return cases;
}
