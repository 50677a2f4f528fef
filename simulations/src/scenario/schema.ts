import { z } from 'zod';
import {
  AuditPolicySchema,
  RoundParamsSchema,
  StrategyConfigSchema,
  defaultMinReports,
} from '@flotilla/protocol';
import { ScenarioSeedsSchema } from './seeds.js';
import { ATTACK_NAMES } from '../attacks/attacks.js';
import { FILE_DATASETS, ScenarioSourceSchema, sourceProblems, type FileDataset } from './source.js';

/** The coordinator's default selection parameters, which its default quorum derives from. */
const SHIPPED_SELECTION = (({ minGoalFraction, overSelection }) => ({ minGoalFraction, overSelection }))(
  RoundParamsSchema.parse({ goalCount: 1, training: { learningRate: 1 } }),
);

/**
 * A simulation scenario: what data, how it is split over devices, how devices behave, what the
 * fleet trains and how the coordinator aggregates. Every field has a default except `name`, so a
 * scenario file states only what it changes.
 */
export const ScenarioPartitionSchema = z
  .object({
    scheme: z.enum(['iid', 'dirichlet', 'shards', 'quantity-skew']).default('iid'),
    /** Dirichlet concentration α (dirichlet only). */
    alpha: z.number().positive().optional(),
    /** Shards, hence classes, per device (shards only). */
    shardsPerDevice: z.number().int().min(1).optional(),
    /** Lognormal σ of device sizes (quantity-skew only). Default 1. */
    sigma: z.number().nonnegative().optional(),
    /** Fewest examples per device (dirichlet, quantity-skew). Default 1. */
    minPerDevice: z.number().int().min(1).default(1),
    /** Most training examples a device keeps (keeps simulated training cheap). Default 200. */
    maxExamplesPerDevice: z.number().int().min(1).default(200),
    /** Share of a device's examples kept back as its local validation holdout. Default 0.2. */
    holdoutFraction: z.number().min(0).lt(1).default(0.2),
  })
  .strict();

export const ScenarioDataSchema = z
  .object({
    /** Rotation of the shifted domain, degrees (mnist-rotated). Default 35. */
    rotationDeg: z.number().min(-180).max(180).default(35),
    /** Pixel noise std of the shifted domain (mnist-noisy). Default 0.35. */
    noiseStd: z.number().nonnegative().default(0.35),
    /** Drift of the shifted domain in [0, 1] (synthetic). Default 0.5. */
    drift: z.number().min(0).max(1).default(0.5),
    /** Examples per synthetic domain. Default 6000. */
    syntheticExamples: z.number().int().min(100).default(6000),
    /** Feature dimension of the synthetic task. Default 32. */
    syntheticDim: z.number().int().min(2).default(32),
    /** Writing styles of the text task (device d writes in style d mod styles, 1–6). Default 4. */
    textStyles: z.number().int().min(1).max(6).default(4),
    /** Characters per example of the text task. Default 32. */
    textSequenceLength: z.number().int().min(2).max(200).default(32),
    /** Examples each device writes in the text task. Default 120. */
    textExamplesPerDevice: z.number().int().min(5).default(120),
    /** Plain-style examples the text task's base model pre-trains on. Default 3000. */
    textPretrainExamples: z.number().int().min(10).default(3000),
  })
  .strict();

export const ScenarioModelSchema = z
  .object({
    /**
     * Built-in base architecture: 'mlp' (dense 'hidden' → 'out'), 'cnn' (two convolutions, then
     * dense 'hidden' → 'out') or 'char-rnn' (embedding, GRU/LSTM 'rnn', dense 'hidden' → 'out').
     * Default: 'char-rnn' for text and sequence data (text, LEAF shakespeare/sent140), 'cnn' for
     * images (image folders, LEAF femnist), else 'mlp'.
     */
    architecture: z.enum(['mlp', 'cnn', 'char-rnn']).optional(),
    /** A tfjs model.json (with its weight files) to use as the base instead of a built-in one. */
    path: z.string().min(1).optional(),
    /** Units of the hidden dense layer ('hidden'; also the RNN's units). Default 128. */
    hidden: z.number().int().min(1).max(4096).default(128),
    /** Embedding width of 'char-rnn'. Default 8. */
    embedding: z.number().int().min(1).max(512).default(8),
    /** Recurrent cell of 'char-rnn'. Default 'gru'. */
    cell: z.enum(['gru', 'lstm']).default('gru'),
    /**
     * false: no pre-training; the base is the architecture's seeded initial weights, for
     * from-scratch FedAvg (with `adapter.mode: full`). Default true.
     */
    pretrained: z.boolean().default(true),
    /** Base-model pre-training epochs on the clean domain. Default 3. */
    baseEpochs: z.number().int().min(1).max(50).default(3),
  })
  .strict();

export const ScenarioAdapterSchema = z
  .object({
    /** 'full' fine-tunes every weight (baseline); the others follow the protocol's AdapterSpec. */
    mode: z.enum(['lora', 'ffa-lora', 'bias', 'full']).default('ffa-lora'),
    r: z.number().int().min(1).max(1024).default(16),
    alpha: z.number().positive().default(32),
    targetModules: z.array(z.string().min(1)).min(1).default(['hidden', 'out']),
  })
  .strict();

export const ScenarioTrainingSchema = z
  .object({
    epochs: z.number().int().min(1).max(100).default(1),
    batchSize: z.number().int().min(1).max(4096).default(32),
    learningRate: z.number().positive().default(0.03),
    optimizer: z.enum(['sgd', 'adam']).default('adam'),
    /** Local optimizer steps per round. Default 20. */
    maxSteps: z.number().int().min(1).default(20),
    /** FedProx μ (0 = plain local training). Default 0. */
    fedProxMu: z.number().nonnegative().default(0),
    /**
     * Device validation gate: the largest relative rise of the local holdout loss with which an
     * honest device still reports (the task's `validationTolerance`); 'off': no gate, every device
     * reports what it trained (plain FedAvg). Default 0.05.
     */
    validationTolerance: z.union([z.number().nonnegative(), z.literal('off')]).default(0.05),
  })
  .strict();

export const ScenarioDpSchema = z
  .object({
    /** Gaussian noise multiplier z (noise std on the average z·C/m). */
    noiseMultiplier: z.number().nonnegative(),
    /** δ of the (ε, δ) guarantee. Default 1e-5. */
    delta: z.number().gt(0).lt(1).default(1e-5),
    /** Promotion stops once ε would exceed this. Default 10. */
    epsilonBudget: z.number().positive().default(10),
    adaptiveClip: z
      .object({
        targetUnclippedQuantile: z.number().gt(0).lt(1).default(0.5),
        learningRate: z.number().positive().default(0.2),
      })
      .strict()
      .optional(),
  })
  .strict();

export const ScenarioBehaviourSchema = z
  .object({
    /** Probability a selected device drops out of a round. Default 0. */
    dropoutProbability: z.number().min(0).max(1).default(0),
    /** Fraction of devices that are slow. Default 0. */
    stragglerFraction: z.number().min(0).max(1).default(0),
    /** Extra delay of a straggler per round, ms. Default 0. */
    stragglerDelayMs: z.number().int().nonnegative().default(0),
    /** Rounds (1-based) during which every device is offline, e.g. to test catch-up. Default []. */
    offlineRounds: z.array(z.number().int().min(1)).default([]),
    /** Fraction of devices that are Byzantine. Default 0. */
    byzantineFraction: z.number().min(0).max(1).default(0),
    /**
     * What Byzantine devices do. Every attack but label-flip (which poisons the data) replaces the
     * device's delta and skips its validation gate; `little-is-enough` (Baruch et al. 2019) and
     * `inner-product` (Xie et al. 2020, −ε × the honest mean) have the round's attackers send one
     * vector crafted from every participant's honest update; `backdoor` (Bagdasaryan et al. 2020)
     * trains on data part-stamped with a trigger and relabelled to `backdoor.targetClass`.
     */
    attack: z.enum(ATTACK_NAMES).default('none'),
    /**
     * Attack strength: s for sign-flip (default 1), λ for scaling (default 10), σ for gaussian
     * (default 1), z for little-is-enough (default the paper's z_max from the round's workers and
     * attackers), ε for inner-product (default 0.1), the model-replacement boost γ for backdoor
     * (default 1: the poisoned update as trained).
     */
    attackScale: z.number().positive().optional(),
    /**
     * Whether Byzantine devices clip their update to the round's bound as the client library does.
     * `false` sends the attacked delta unclipped: the coordinator refuses it (NORM_EXCEEDED, logged
     * as `update.refused`) whenever its norm is above the bound. Default true.
     */
    attackerClips: z.boolean().default(true),
    /** The backdoor attack's target and poisoning (Bagdasaryan et al. 2020). */
    backdoor: z
      .object({
        /** Class the trigger should make the model predict. Default 0. */
        targetClass: z.number().int().nonnegative().default(0),
        /** Share of an attacker's training examples stamped with the trigger and relabelled. Default 0.5. */
        poisonFraction: z.number().gt(0).max(1).default(0.5),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const ScenarioSchema = z
  .object({
    name: z.string().min(1).max(128),
    description: z.string().max(2000).default(''),
    /** The seed of every random stream that `seeds` does not set. Default 1. */
    seed: z.number().int().nonnegative().default(1),
    /** Separate seeds for the model, data, partition, device sampling, training and DP noise. */
    seeds: ScenarioSeedsSchema.prefault({}),
    /**
     * mnist-rotated, mnist-noisy, synthetic and text are built in; leaf, csv, npy and
     * image-folder read the files `source` names.
     */
    dataset: z
      .enum(['mnist-rotated', 'mnist-noisy', 'synthetic', 'text', ...FILE_DATASETS])
      .default('mnist-rotated'),
    data: ScenarioDataSchema.prefault({}),
    /** Where a file dataset lives and how to read it. */
    source: ScenarioSourceSchema.optional(),
    partition: ScenarioPartitionSchema.prefault({}),
    /** Devices in the fleet. */
    devices: z.number().int().min(1).max(100_000).default(20),
    /** Updates a round aims for (goalCount). */
    devicesPerRound: z.number().int().min(1).default(10),
    /**
     * Quorum for a round to commit; 'auto': the coordinator's default for `devicesPerRound`
     * (`defaultMinReports`: ⌊0.8 · goal / 1.3⌋, at least 1; 10 per round → 6). Default 5.
     */
    minReports: z.union([z.number().int().min(1), z.literal('auto')]).default(5),
    rounds: z.number().int().min(1).max(10_000).default(10),
    model: ScenarioModelSchema.prefault({}),
    adapter: ScenarioAdapterSchema.prefault({}),
    training: ScenarioTrainingSchema.prefault({}),
    strategy: StrategyConfigSchema.prefault({ name: 'fedavg' }),
    dp: ScenarioDpSchema.optional(),
    /**
     * Global L2 clip bound C of every delta; 'none' clips nothing (plain FedAvg: the task's bound
     * is then `NO_CLIP_NORM`, the largest double, which no delta reaches). Default 1.
     */
    clipNorm: z.union([z.number().positive(), z.literal('none')]).default(1),
    /**
     * The server's drift audit (protocol `AuditPolicy`): its thresholds, and `enforce: false` to
     * switch it off (it then records its checks without deciding, and the trust region is off).
     * Default: the shipped policy, enforced.
     */
    audit: AuditPolicySchema.strict().prefault({}),
    behaviour: ScenarioBehaviourSchema.prefault({}),
  })
  .strict()
  .superRefine((scenario, ctx) => {
    if (scenario.devicesPerRound > scenario.devices) {
      ctx.addIssue({
        code: 'custom',
        path: ['devicesPerRound'],
        message: `must be <= devices (${scenario.devices})`,
      });
    }
    if (scenario.minReports !== 'auto' && scenario.minReports > scenario.devicesPerRound) {
      ctx.addIssue({
        code: 'custom',
        path: ['minReports'],
        message: `must be <= devicesPerRound (${scenario.devicesPerRound})`,
      });
    }
    if ((FILE_DATASETS as readonly string[]).includes(scenario.dataset))
      for (const problem of sourceProblems(scenario.dataset as FileDataset, scenario.source))
        ctx.addIssue({ code: 'custom', ...problem });
    else if (scenario.source !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['source'],
        message: `is for file datasets (${FILE_DATASETS.join(', ')}), not ${scenario.dataset}`,
      });
    const { partition } = scenario;
    if (partition.scheme === 'dirichlet' && partition.alpha === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['partition', 'alpha'],
        message: 'is required for the dirichlet scheme',
      });
    }
    if (partition.scheme === 'shards' && partition.shardsPerDevice === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['partition', 'shardsPerDevice'],
        message: 'is required for the shards scheme',
      });
    }
    if (!scenario.model.pretrained && scenario.model.path !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['model', 'pretrained'],
        message: 'applies to built-in architectures, not to a model from model.path',
      });
    if (scenario.dp !== undefined && scenario.clipNorm === 'none')
      ctx.addIssue({
        code: 'custom',
        path: ['clipNorm'],
        message: 'differential privacy needs a clip bound (the noise is scaled to it)',
      });
    if (scenario.behaviour.byzantineFraction > 0 && scenario.behaviour.attack === 'none') {
      ctx.addIssue({
        code: 'custom',
        path: ['behaviour', 'attack'],
        message: 'byzantineFraction > 0 needs an attack',
      });
    }
  })
  .transform(({ minReports, ...scenario }) => ({
    ...scenario,
    minReports:
      minReports === 'auto'
        ? defaultMinReports({ ...SHIPPED_SELECTION, goalCount: scenario.devicesPerRound })
        : minReports,
  }));

export type Scenario = z.infer<typeof ScenarioSchema>;

/** The task clip bound of `clipNorm: none`: finite (task JSON has no Infinity) and above any delta's norm. */
export const NO_CLIP_NORM = Number.MAX_VALUE;

/** The clip bound a scenario's task uses. */
export const taskClipNorm = (scenario: Pick<Scenario, 'clipNorm'>): number =>
  scenario.clipNorm === 'none' ? NO_CLIP_NORM : scenario.clipNorm;
export type ScenarioInput = z.input<typeof ScenarioSchema>;
