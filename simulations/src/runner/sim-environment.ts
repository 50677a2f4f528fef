import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { toBase64, type AdapterSpec, type SignedTask, type TaskDefinitionInput } from '@flotilla/protocol';

/** A scenario's task: a task definition whose adapter spec is complete (no defaults left to fill). */
export type ScenarioTask = TaskDefinitionInput & { adapter: AdapterSpec };
import { Redis } from 'ioredis';
import {
  defaultRoundLogPath,
  loadOrCreateCoordinatorKey,
  loadOrCreateRoundLogSecret,
  openRoundLog,
  redisOptionsFromUrl,
  startEmbeddedRedis,
  type EmbeddedRedis,
  type RoundLogWriter,
} from '@flotilla/coordinator/shared';
import { createCoordinator, roundLogEvents, type Coordinator } from '@flotilla/coordinator/server';
import { startAggregationWorker, type AggregationWorker } from '@flotilla/coordinator/worker';
import type { HoldoutMetrics } from '@flotilla/coordinator/worker';
import { taskClipNorm, type Scenario } from '../scenario/schema.js';
import { scenarioSeeds } from '../scenario/seeds.js';
import type { BaseModel } from '../model/base-model.js';

/** A private coordinator + worker (+ Redis) for one simulation run. */
export interface SimEnvironment {
  coordinator: Coordinator;
  worker: AggregationWorker;
  redisUrl: string;
  prefix: string;
  /** The task definition; registered (and its first round opened) by `registerTask`. */
  taskInput: ScenarioTask;
  taskId: string;
  registerTask(): Promise<SignedTask>;
  roundLog: RoundLogWriter;
  /** The JSONL mirror of the round log. */
  roundLogPath: string;
  stop(): Promise<void>;
}

export interface StartEnvironmentOptions {
  scenario: Scenario;
  base: BaseModel;
  stateDir: string;
  /** Use this Redis instead of starting a private one. */
  redisUrl?: string;
  /** Server-holdout evaluation used by the drift audit (candidate vs current adapter). */
  evaluate?: (adapter: Map<string, { shape: number[]; values: Float32Array }>) => Promise<HoldoutMetrics>;
}

/** The task a scenario trains: its adapter, round parameters and policy. */
export function taskFromScenario(
  scenario: Scenario,
  base: BaseModel,
  moduleShapes: Record<string, { in: number; out: number }>,
): ScenarioTask {
  return {
    taskId:
      scenario.name
        .toLowerCase()
        .replace(/[^a-z0-9-]+/g, '-')
        .replace(/^-+/, '')
        .slice(0, 63) || 'sim',
    description: scenario.description,
    baseModel: { digest: base.digest, format: 'tfjs-layers-bundle', bytes: base.bytes.length },
    adapter: {
      mode: scenario.adapter.mode,
      targetModules: scenario.adapter.targetModules,
      r: scenario.adapter.r,
      alpha: scenario.adapter.alpha,
      seed: scenarioSeeds(scenario).model,
    },
    moduleShapes,
    rounds: {
      goalCount: scenario.devicesPerRound,
      // The schedule makes exactly goalCount devices eligible, so the coordinator selects the
      // same ones in every run with the same seed.
      overSelection: 1,
      minGoalFraction: 1,
      // Long enough for every scheduled device to check in on a loaded machine; only rounds in
      // which the scenario takes devices offline wait it out.
      selectionTimeoutMs: 60_000,
      reportingDeadlineMs: 120_000,
      minReports: scenario.minReports,
      acceptWindowMs: 0,
      retryAfterMs: 200,
      maxRounds: scenario.rounds,
      training: {
        epochs: scenario.training.epochs,
        batchSize: scenario.training.batchSize,
        learningRate: scenario.training.learningRate,
        fedProxMu: scenario.training.fedProxMu,
        optimizer: scenario.training.optimizer,
      },
      maxSteps: scenario.training.maxSteps,
      // Generous: the step budget, not the clock, must end local training (reproducibility).
      maxSeconds: 120,
      validationTolerance:
        scenario.training.validationTolerance === 'off' ? null : scenario.training.validationTolerance,
      quantization: 'none',
    },
    policy: {
      allowedModules: scenario.adapter.targetModules,
      clipNorm: taskClipNorm(scenario),
      maxBlobBytes: 16 * 1024 * 1024,
      strategy: scenario.strategy,
      ...(scenario.dp
        ? {
            dp: {
              noiseMultiplier: scenario.dp.noiseMultiplier,
              delta: scenario.dp.delta,
              epsilonBudget: scenario.dp.epsilonBudget,
              populationSize: scenario.devices,
              ...(scenario.dp.adaptiveClip ? { adaptiveClip: scenario.dp.adaptiveClip } : {}),
            },
          }
        : {}),
      audit: scenario.audit,
    },
    createdAt: 0,
  };
}

export async function startEnvironment(options: StartEnvironmentOptions): Promise<SimEnvironment> {
  mkdirSync(options.stateDir, { recursive: true });
  let embedded: EmbeddedRedis | null = null;
  if (!options.redisUrl) embedded = await startEmbeddedRedis({ dataDir: join(options.stateDir, 'redis') });
  const redisUrl = options.redisUrl ?? embedded?.url ?? '';
  // A fresh key prefix per run keeps runs on a shared Redis apart.
  const prefix = `sim-${randomBytes(4).toString('hex')}`;
  const logger = pino({ level: process.env.FLOTILLA_LOG_LEVEL ?? 'silent' });
  const signingKey = loadOrCreateCoordinatorKey(options.stateDir);
  const logRedis = new Redis(redisOptionsFromUrl(redisUrl));
  const roundLogPath = defaultRoundLogPath(options.stateDir);
  const roundLog = openRoundLog({
    redis: logRedis,
    prefix,
    filePath: roundLogPath,
    signingKey,
    pseudonymSecret: await loadOrCreateRoundLogSecret(options.stateDir),
    // A simulation keeps every delta in its blob directory, so auditors can recompute aggregates.
    retainDeltas: { ttlMs: 30 * 24 * 3600 * 1000 },
  });
  const coordinator = await createCoordinator({
    redisUrl,
    prefix,
    stateDir: options.stateDir,
    host: '127.0.0.1',
    port: 0,
    logger,
    signingKey,
    roundEvents: roundLogEvents(logger, roundLog),
  });
  const worker = await startAggregationWorker({
    redisUrl,
    prefix,
    stateDir: options.stateDir,
    signingKey,
    roundLog,
    noiseSeed: String(scenarioSeeds(options.scenario).noise),
    logger,
    ...(options.evaluate
      ? { evaluate: (_task, adapter) => options.evaluate?.(adapter) ?? Promise.resolve({}) }
      : {}),
  });
  await coordinator.blobs.put(options.base.digest, options.base.bytes);
  const moduleShapes: Record<string, { in: number; out: number }> = {};
  for (const module of options.scenario.adapter.targetModules) {
    const kernel = options.base.model.getLayer(module).getWeights()[0];
    const [inputs, outputs] = kernel?.shape ?? [];
    if (inputs === undefined || outputs === undefined)
      throw new Error(`base model has no dense layer "${module}"`);
    moduleShapes[module] = { in: inputs, out: outputs };
  }
  const taskInput = taskFromScenario(options.scenario, options.base, moduleShapes);
  return {
    coordinator,
    worker,
    redisUrl,
    prefix,
    taskInput,
    taskId: taskInput.taskId,
    registerTask: () => coordinator.createTask(taskInput),
    roundLog,
    roundLogPath,
    async stop() {
      await worker.close();
      await coordinator.close();
      logRedis.disconnect();
      await embedded?.stop();
    },
  };
}

export const coordinatorKeyOf = (env: SimEnvironment): string =>
  toBase64(env.coordinator.coordinatorKey.publicKey);
