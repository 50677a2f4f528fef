import { availableParallelism } from 'node:os';
import { scenarioDomains, toLocalDataset } from './scenario-data.js';
import { readRoundOutcome, readTaskStop, type RoundOutcome } from '@flotilla/coordinator/shared';
import { decodeFloat32Tensors, toBase64, keyPairFromSeed } from '@flotilla/protocol';
import {
  activeBackendName,
  createAdaptedModel,
  evaluateModel,
  initBackend,
  type LocalDataset,
} from '@flotilla/client';
import type { Domains } from '../data/domains.js';
import type { Dataset } from '../data/dataset.js';
import { capPartition, partitionExamples } from '../partition/index.js';
import { chooseByzantineDevices } from '../attacks/attacks.js';
import { getBaseModel, type BaseModel } from '../model/base-model.js';
import { createRng } from '../rng/random.js';
import type { Scenario } from '../scenario/schema.js';
import type { RoundMetricsInput } from '../report/metrics.js';
import { createProgressBar } from '../progress/progress-bar.js';
import { CollusionBroker } from './collusion-broker.js';
import { SimulatedFleet } from './fleet.js';
import type { HostEvent, HostSetup } from './host-messages.js';
import { participationFor } from './participation.js';
import { coordinatorKeyOf, startEnvironment, type SimEnvironment } from './sim-environment.js';

export interface RunSimulationOptions {
  scenario: Scenario;
  /** Keys, blobs, the embedded Redis and the round log of this run. */
  stateDir: string;
  /** Where the base model is cached (shared across runs). Default `stateDir`. */
  cacheDir?: string;
  /** An existing Redis; default: a private redis-server under stateDir. */
  redisUrl?: string;
  /** Device worker threads. Default: the number of cores (at most the number of devices). */
  threads?: number;
  /** Progress output; default a progress bar on stderr. */
  progress?: boolean;
}

export interface SimulationResult {
  scenario: Scenario;
  backend: string;
  metrics: RoundMetricsInput[];
  base: { digest: string; cleanAccuracy: number; shiftedAccuracy: number };
  taskId: string;
  coordinatorKey: string;
  /** The round log's JSONL mirror (verify it with `flotilla audit verify`). */
  roundLogPath: string;
  /** Why the worker stopped the task before the scenario's last round (e.g. the ε budget), else null. */
  stopped: string | null;
  /** Every device, its pseudonym in the round log, and whether it was Byzantine (ground truth). */
  devices: Array<{ deviceId: string; pseudonym: string; byzantine: boolean }>;
}

/** Splits each device's examples into training and a local holdout (for its validation gate). */
function deviceShares(scenario: Scenario, pool: Dataset): HostSetup['devices'] {
  const rng = createRng(scenario.seed);
  const partition = capPartition(
    partitionExamples({
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
    }),
    scenario.partition.maxExamplesPerDevice,
  );
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
    const keySeed = new Uint8Array(32);
    const keyRng = rng.fork(`keys/${i}`);
    for (let b = 0; b < 32; b++) keySeed[b] = keyRng.int(256);
    return {
      deviceId: `device-${String(i).padStart(4, '0')}`,
      seedKey: toBase64(keySeed),
      trainIndices: indices.slice(holdoutCount),
      holdoutIndices: indices.slice(0, holdoutCount),
      byzantine: byzantine.has(i),
      straggler: stragglerRng.next() < scenario.behaviour.stragglerFraction,
      seed: scenario.seed * 1000 + i,
    };
  });
}

class RoundEventTally {
  refused: Record<string, number> = {};
  accepted = 0;
  /** Adapter version each device serves. */
  readonly versions = new Map<string, number>();
  record(event: HostEvent): void {
    if (event.type === 'adapter') this.versions.set(event.deviceId, event.version);
    else if (event.type === 'refused') this.refused[event.code] = (this.refused[event.code] ?? 0) + 1;
    else if (event.type === 'skipped') this.refused[event.reason] = (this.refused[event.reason] ?? 0) + 1;
    else if (event.type === 'accepted') this.accepted++;
  }
  reset(): void {
    this.refused = {};
    this.accepted = 0;
  }
  /**
   * Waits until every device serves `version` (they fetch it on `adapter:promoted`), so the
   * traffic of a promotion is counted in the round that caused it, the same way in every run.
   */
  async untilAllServe(version: number, devices: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const caughtUp = () => [...this.versions.values()].filter((v) => v >= version).length;
    while (caughtUp() < devices && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function evaluateAdapter(
  base: BaseModel,
  env: SimEnvironment,
  test: LocalDataset,
): Promise<{ accuracy: number; loss: number }> {
  const model = createAdaptedModel({ base: base.model, spec: env.taskInput.adapter });
  try {
    const version = await env.coordinator.adapters.latestVersion(env.taskId);
    if (version > 0) {
      const signed = await env.coordinator.adapters.getManifest(env.taskId, version);
      const bytes = signed ? await env.coordinator.blobs.get(signed.manifest.adapter.f32.digest) : null;
      if (bytes) model.loadAdapterTensors(decodeFloat32Tensors(bytes).tensors);
    }
    const { accuracy, loss } = evaluateModel(model, test);
    return { accuracy, loss };
  } finally {
    model.dispose();
  }
}

function cleanAccuracy(base: BaseModel, domains: Domains): number {
  const model = createAdaptedModel({
    base: base.model,
    spec: { mode: 'bias', targetModules: ['out'], r: 1, alpha: 1, seed: 0 },
  });
  try {
    return evaluateModel(model, toLocalDataset(domains.clean.test)).accuracy;
  } finally {
    model.dispose();
  }
}

/**
 * Waits for the round after `previousRoundId` to open, then for that very round to be decided
 * (or abandoned). The coordinator opens the next round within milliseconds of a decision, so the
 * round is pinned by id rather than read from the task's current round.
 */
async function awaitRound(env: SimEnvironment, previousRoundId: string | null, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  const taskId = env.taskId;
  let roundId: string | null = null;
  for (;;) {
    if (roundId === null) {
      const current = await env.coordinator.rounds.current(taskId);
      if (current && current.roundId !== previousRoundId) roundId = current.roundId;
    }
    const round = roundId === null ? null : await env.coordinator.rounds.get(roundId);
    if (round && ['COMMITTED', 'REJECTED', 'ABANDONED'].includes(round.state)) return round;
    if (Date.now() > deadline)
      throw new Error(`round after ${previousRoundId ?? 'start'} did not finish within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Runs a scenario end to end on real parts: a private Redis, the real coordinator and BullMQ
 * worker, and virtual devices (the real client library over real sockets and HTTP) spread over
 * worker threads. Returns per-round metrics; the same seed gives the same metrics (timings aside).
 */
export async function runSimulation(options: RunSimulationOptions): Promise<SimulationResult> {
  const { scenario } = options;
  const backend = await initBackend({ logger: () => undefined });
  const domains: Domains = scenarioDomains(scenario);
  const base = await getBaseModel({
    stateDir: options.cacheDir ?? options.stateDir,
    config: {
      dataset: scenario.dataset,
      seed: scenario.seed,
      hidden: scenario.model.hidden,
      epochs: scenario.model.baseEpochs,
    },
  });
  const shiftedTest = toLocalDataset(domains.shifted.test);
  const holdout = toLocalDataset(domains.shifted.holdout);
  const env = await startEnvironment({
    scenario,
    base,
    stateDir: options.stateDir,
    ...(options.redisUrl ? { redisUrl: options.redisUrl } : {}),
    evaluate: (adapter) => {
      const model = createAdaptedModel({ base: base.model, spec: env.taskInput.adapter });
      try {
        if (adapter.size > 0) model.loadAdapterTensors(adapter);
        // Per-example results too: the audit tests the candidate against the current adapter on
        // the same holdout examples (exact paired test).
        const { accuracy, loss, examples, correct } = evaluateModel(model, holdout);
        return Promise.resolve({ accuracy, loss, examples, correct });
      } finally {
        model.dispose();
      }
    },
  });
  const shares = deviceShares(scenario, domains.shifted.train);
  const tally = new RoundEventTally();
  const threads = Math.max(1, Math.min(options.threads ?? availableParallelism(), shares.length));
  const setups: HostSetup[] = Array.from({ length: threads }, (_, t) => ({
    url: env.coordinator.url,
    taskId: env.taskId,
    coordinatorKey: coordinatorKeyOf(env),
    scenario,
    devices: shares.filter((_, i) => i % threads === t),
  }));
  for (const share of shares) {
    const pair = keyPairFromSeed(Buffer.from(share.seedKey, 'base64'));
    await env.coordinator.devices.registerDevice({
      deviceId: share.deviceId,
      publicKey: toBase64(pair.publicKey),
    });
  }
  let broker: CollusionBroker | null = null;
  const fleet = await SimulatedFleet.start(setups, (event) => {
    if (event.type === 'honest-update') broker?.receive(event.index, event.deviceId, event.delta);
    else tally.record(event);
  });
  if (scenario.behaviour.attack === 'little-is-enough')
    broker = new CollusionBroker({
      byzantine: new Set(shares.filter((s) => s.byzantine).map((s) => s.deviceId)),
      send: (message) => fleet.announce(message),
      ...(scenario.behaviour.attackScale !== undefined ? { z: scenario.behaviour.attackScale } : {}),
    });
  await env.registerTask();
  const progress =
    options.progress === false ? null : createProgressBar({ total: scenario.rounds, label: scenario.name });
  const metrics: RoundMetricsInput[] = [];
  const start = await evaluateAdapter(base, env, shiftedTest);
  metrics.push({
    round: 0,
    accuracy: start.accuracy,
    loss: start.loss,
    participants: 0,
    bytesUp: 0,
    bytesDown: 0,
    epsilon: null,
    decision: 'COMMITTED',
    reasons: ['base model with the initial adapter'],
  });
  const rng = createRng(scenario.seed);
  const deviceIds = shares.map((s) => s.deviceId);
  let previous: string | null = null;
  let epsilon: number | null = scenario.dp ? 0 : null;
  let stopped: string | null = null;
  try {
    for (let index = 0; index < scenario.rounds; index++) {
      const started = Date.now();
      tally.reset();
      const plan = participationFor({
        rng,
        index,
        deviceIds,
        perRound: scenario.devicesPerRound,
        dropoutProbability: scenario.behaviour.dropoutProbability,
        offlineRounds: scenario.behaviour.offlineRounds,
      });
      fleet.announce({ type: 'round', index, participants: plan.participants, dropouts: plan.dropouts });
      broker?.startRound(
        index,
        plan.participants.filter((id) => !plan.dropouts.includes(id)),
      );
      const round = await awaitRound(env, previous, 300_000);
      previous = round.roundId;
      const outcome: RoundOutcome | null = await readRoundOutcome(
        env.coordinator.redis,
        env.prefix,
        round.roundId,
      );
      // ε after every aggregated round, rejected ones included: each noised aggregate is charged.
      if (outcome?.privacy) epsilon = outcome.privacy.epsilon;
      if (outcome?.version) await tally.untilAllServe(outcome.version, shares.length, 60_000);
      const evaluation = await evaluateAdapter(base, env, shiftedTest);
      const bytes = await fleet.takeBytes();
      metrics.push({
        round: index + 1,
        accuracy: evaluation.accuracy,
        loss: evaluation.loss,
        participants: round.acceptedCount,
        refused: { ...tally.refused },
        bytesUp: bytes.up,
        bytesDown: bytes.down,
        epsilon,
        decision: round.state === 'COMMITTED' || round.state === 'REJECTED' ? round.state : 'ABANDONED',
        reasons: outcome?.reasons ?? (round.reason ? [round.reason] : []),
        timings: { total_ms: Date.now() - started },
      });
      progress?.update({ done: index + 1, accuracy: evaluation.accuracy, note: round.state });
      // The worker stopped the task (e.g. the ε budget cannot pay for another round): no round follows.
      const stop = await readTaskStop(env.coordinator.redis, env.prefix, env.taskId);
      if (stop !== null) {
        stopped = stop.reason;
        break;
      }
    }
  } finally {
    broker?.stop();
    progress?.finish();
    await fleet.stop();
    await env.stop();
  }
  return {
    scenario,
    backend: activeBackendName() ?? backend.name,
    metrics,
    base: {
      digest: base.digest,
      cleanAccuracy: cleanAccuracy(base, domains),
      shiftedAccuracy: start.accuracy,
    },
    taskId: env.taskId,
    coordinatorKey: coordinatorKeyOf(env),
    roundLogPath: env.roundLogPath,
    stopped,
    devices: shares.map((s) => ({
      deviceId: s.deviceId,
      pseudonym: env.roundLog.pseudonymize(s.deviceId),
      byzantine: s.byzantine,
    })),
  };
}
