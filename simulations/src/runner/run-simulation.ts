import { availableParallelism } from 'node:os';
import { readRoundOutcome, readTaskStop, type RoundOutcome } from '@flotilla/coordinator/shared';
import { decodeFloat32Tensors } from '@flotilla/protocol';
import {
  activeBackendName,
  createAdaptedModel,
  type AdaptedModel,
  evaluateModel,
  initBackend,
  type LocalDataset,
} from '@flotilla/client';
import { shareDataset } from '../data/dataset.js';
import type { TaskData } from '../data/task-data.js';
import type { BaseModel } from '../model/base-model.js';
import { modelInputShape } from '../model/input-shape.js';
import { scenarioArchitecture, taskBaseModel } from '../model/task-base-model.js';
import { createRng } from '../rng/random.js';
import type { Scenario } from '../scenario/schema.js';
import { scenarioSeeds } from '../scenario/seeds.js';
import type { DeviceAccuracy, PerDeviceSummary, RoundMetricsInput } from '../report/metrics.js';
import { evaluatePerDevice, summarizeDeviceAccuracy } from './per-device.js';
import type { AttackGroundTruth } from '../report/attack-metrics.js';
import { createProgressBar, type ProgressStream } from '../progress/progress-bar.js';
import { createSetupLog, silentSetupLog } from '../progress/setup-log.js';
import { isColludingAttack } from '../attacks/colluding.js';
import { attackGroundTruth, scenarioBackdoor } from './attack-truth.js';
import { CollusionBroker } from './collusion-broker.js';
import { SimulatedFleet } from './fleet.js';
import { deviceSpecs, enrollDevices } from './fleet-setup.js';
import type { HostSetup } from './host-messages.js';
import { scenarioParticipation } from './participation.js';
import { RoundEventTally } from './round-tally.js';
import { scenarioTask, toLocalDataset } from './scenario-data.js';
import { coordinatorKeyOf, startEnvironment, type SimEnvironment } from './sim-environment.js';
import { awaitAcknowledgedUpdates, watchRound } from './watch-round.js';

export interface RunSimulationOptions {
  scenario: Scenario;
  /** Keys, blobs, the embedded Redis and the round log of this run. */
  stateDir: string;
  /** Where the base model is cached (shared across runs). Default `stateDir`. */
  cacheDir?: string;
  /** An existing Redis; default: a private redis-server under stateDir. */
  redisUrl?: string;
  /** Device worker threads. Default: {@link defaultDeviceThreads} (at most the number of devices). */
  threads?: number;
  /** Progress output (setup steps, a bar per round, what a slow round waits for). Default true. */
  progress?: boolean;
  /** Where progress goes. Default process.stderr. */
  progressStream?: ProgressStream;
  /**
   * Ms a round may go without progress (no state change, check-in, update or device event)
   * before the run fails with `SimulationStalledError`, which names what the round waited for.
   * Default 120 000.
   */
  stallTimeoutMs?: number;
}

export interface SimulationResult {
  scenario: Scenario;
  backend: string;
  metrics: RoundMetricsInput[];
  base: {
    digest: string;
    /** Accuracy of the base on the task's reference set (MNIST: the clean digits), if it has one. */
    cleanAccuracy: number | null;
    /** Accuracy of the base on the reported test set (MNIST: the shifted digits). */
    shiftedAccuracy: number;
    /** What the two sets are, for reports. */
    referenceLabel: string | null;
    testLabel: string;
  };
  taskId: string;
  coordinatorKey: string;
  /** Redis key prefix of the run's coordinator (its state stays in Redis for inspection). */
  prefix: string;
  /** The round log's JSONL mirror (verify it with `flotilla audit verify`). */
  roundLogPath: string;
  /** Why the worker stopped the task before the scenario's last round (e.g. the ε budget), else null. */
  stopped: string | null;
  /** Every device, its pseudonym in the round log, and whether it was Byzantine (ground truth). */
  devices: Array<{ deviceId: string; pseudonym: string; byzantine: boolean }>;
  /** Who attacked and how many of their updates the audit flagged or the strategy excluded; null without an attack. */
  attack: AttackGroundTruth | null;
  /** Wall time from the call to the first round's start (base model, enrolment, hosts), ms. */
  setupMs: number;
  /** The final model's accuracy on each device's own holdout, and its distribution (null: no holdouts). */
  perDevice: { summary: PerDeviceSummary; devices: DeviceAccuracy[] } | null;
}

/**
 * Device-host threads when the caller does not choose: one per core but one, and at least one.
 * The main thread needs a core too (coordinator, BullMQ worker, evaluation), and every host loads
 * its own tfjs and client (about 130 MB). On 2 cores one host ran the demo task and rounds of 100
 * devices as fast as two (docs/benchmarks.md, simulation memory).
 */
export const defaultDeviceThreads = (): number => Math.max(1, availableParallelism() - 1);

/** Runs `use` on the base with the adapter version in service (the initial adapter before any). */
async function withPromotedModel<T>(
  base: BaseModel,
  env: SimEnvironment,
  use: (model: AdaptedModel) => T,
): Promise<T> {
  const model = createAdaptedModel({ base: base.model, spec: env.taskInput.adapter });
  try {
    const version = await env.coordinator.adapters.latestVersion(env.taskId);
    if (version > 0) {
      const signed = await env.coordinator.adapters.getManifest(env.taskId, version);
      const bytes = signed ? await env.coordinator.blobs.get(signed.manifest.adapter.f32.digest) : null;
      if (bytes) model.loadAdapterTensors(decodeFloat32Tensors(bytes).tensors);
    }
    return use(model);
  } finally {
    model.dispose();
  }
}

/**
 * The promoted adapter's accuracy and loss on `test`, and its backdoor accuracy (the share of the
 * triggered inputs put in the target class) when the run has a backdoor test set.
 */
function evaluateAdapter(
  base: BaseModel,
  env: SimEnvironment,
  test: LocalDataset,
  backdoor: LocalDataset | null,
): Promise<{ accuracy: number; loss: number; backdoorAccuracy?: number }> {
  return withPromotedModel(base, env, (model) => {
    const { accuracy, loss } = evaluateModel(model, test);
    return {
      accuracy,
      loss,
      ...(backdoor !== null ? { backdoorAccuracy: evaluateModel(model, backdoor).accuracy } : {}),
    };
  });
}

/** The base model's accuracy on `data` (the initial adapter leaves the adapted model equal to the base). */
function baseAccuracy(base: BaseModel, env: SimEnvironment, data: LocalDataset): number {
  const model = createAdaptedModel({ base: base.model, spec: env.taskInput.adapter });
  try {
    return evaluateModel(model, data).accuracy;
  } finally {
    model.dispose();
  }
}

/**
 * Runs a scenario end to end on real parts: a private Redis, the real coordinator and BullMQ
 * worker, and virtual devices spread over worker threads. A device stays dormant (no socket, no
 * model) until the schedule picks it; then it runs the real client library over real sockets and
 * HTTP for that round. Returns per-round metrics; the same seed gives the same metrics (timings
 * aside).
 */
export async function runSimulation(options: RunSimulationOptions): Promise<SimulationResult> {
  const { scenario } = options;
  const started = Date.now();
  const showProgress = options.progress !== false;
  const stream = options.progressStream ?? process.stderr;
  const setup = showProgress ? createSetupLog({ stream }) : silentSetupLog;
  const backend = await initBackend({ logger: () => undefined });
  const task: TaskData = await setup.step(
    'data',
    () => scenarioTask(scenario),
    (t) => `${t.pool.n.toLocaleString('en-US')} device examples; ${t.description}`,
  );
  const base = await setup.step(
    'base model',
    () => taskBaseModel({ scenario, task, stateDir: options.cacheDir ?? options.stateDir }),
    (b) =>
      scenario.model.path !== undefined
        ? `from ${scenario.model.path}`
        : `${scenarioArchitecture(scenario, task)}, ${b.cached ? 'from the cache' : `trained on ${b.backend}`}`,
  );
  const inputShape = modelInputShape(base.model, task.pool.dim);
  const shiftedTest = toLocalDataset(task.test, inputShape);
  const holdout = toLocalDataset(task.holdout, inputShape);
  const env: SimEnvironment = await setup.step('coordinator and worker', () =>
    startEnvironment({
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
    }),
  );
  let fleet: SimulatedFleet | null = null;
  let broker: CollusionBroker | null = null;
  const progress = showProgress
    ? createProgressBar({ total: scenario.rounds, label: scenario.name, stream })
    : null;
  try {
    const specs = await setup.step(
      'device shards',
      () => deviceSpecs(scenario, task),
      (list) =>
        `${list.length.toLocaleString('en-US')} devices, ${task.users ? 'one per user of the data' : `${scenario.partition.scheme} split`}`,
    );
    await setup.step('enrolment', () =>
      enrollDevices(env.coordinator.devices, specs, (done) => setup.count('enrolled', done, specs.length)),
    );
    const tally = new RoundEventTally();
    const threads = Math.max(1, Math.min(options.threads ?? defaultDeviceThreads(), specs.length));
    const backdoor = scenarioBackdoor(scenario, task, inputShape);
    const pool = shareDataset(task.pool);
    const setups: HostSetup[] = Array.from({ length: threads }, (_, t) => ({
      backdoorTrigger: backdoor?.trigger ?? null,
      url: env.coordinator.url,
      taskId: env.taskId,
      coordinatorKey: coordinatorKeyOf(env),
      scenario,
      pool,
      inputShape,
      baseModelDigest: base.digest,
      devices: specs.filter((_, i) => i % threads === t),
    }));
    fleet = await setup.step(
      'device hosts',
      () =>
        SimulatedFleet.start(
          setups,
          (event) => {
            if (event.type === 'honest-update') broker?.receive(event.index, event.deviceId, event.delta);
            else tally.record(event);
          },
          { onReady: (ready) => setup.count('device hosts ready', ready, threads) },
        ),
      () => `${threads} threads, devices dormant until scheduled`,
    );
    const hosts = fleet;
    const { attack, attackScale } = scenario.behaviour;
    if (isColludingAttack(attack))
      broker = new CollusionBroker({
        attack,
        byzantine: new Set(specs.filter((s) => s.byzantine).map((s) => s.deviceId)),
        send: (message) => hosts.announce(message),
        ...(attackScale !== undefined ? { scale: attackScale } : {}),
      });
    await setup.step(
      'task',
      () => env.registerTask(),
      (task) => task.task.taskId,
    );
    setup.finish();
    const setupMs = Date.now() - started;
    const metrics: RoundMetricsInput[] = [];
    const start = await evaluateAdapter(base, env, shiftedTest, backdoor?.test ?? null);
    metrics.push({
      round: 0,
      accuracy: start.accuracy,
      loss: start.loss,
      ...(start.backdoorAccuracy !== undefined ? { backdoorAccuracy: start.backdoorAccuracy } : {}),
      participants: 0,
      bytesUp: 0,
      bytesDown: 0,
      epsilon: null,
      decision: 'COMMITTED',
      reasons: ['base model with the initial adapter'],
    });
    const rng = createRng(scenarioSeeds(scenario).sampling);
    const deviceIds = specs.map((s) => s.deviceId);
    let previous: string | null = null;
    let epsilon: number | null = scenario.dp ? 0 : null;
    let stopped: string | null = null;
    for (let index = 0; index < scenario.rounds; index++) {
      const roundStarted = Date.now();
      const plan = scenarioParticipation(scenario, rng, index, deviceIds);
      tally.startRound(plan.participants);
      hosts.announce({ type: 'round', index, participants: plan.participants, dropouts: plan.dropouts });
      broker?.startRound(
        index,
        plan.participants.filter((id) => !plan.dropouts.includes(id)),
      );
      const round = await watchRound({
        env,
        previousRoundId: previous,
        round: index + 1,
        scheduled: plan.participants,
        devices: tally.progress,
        ...(options.stallTimeoutMs !== undefined ? { stallTimeoutMs: options.stallTimeoutMs } : {}),
        ...(progress ? { onStatus: (text: string) => progress.status(text) } : {}),
        offline: plan.participants.length === 0,
      });
      // An offline round the coordinator kept open is the next scheduled round's round too.
      const keptOpen = round.state === 'SELECTING';
      if (!keptOpen) previous = round.roundId;
      await awaitAcknowledgedUpdates({
        env,
        round,
        devices: tally.progress,
        ...(options.stallTimeoutMs !== undefined ? { stallTimeoutMs: options.stallTimeoutMs } : {}),
      });
      // Devices still online (never selected, or training past the deadline) go dormant; the
      // round's traffic is then complete.
      const bytes = await hosts.endRound();
      const outcome: RoundOutcome | null = await readRoundOutcome(
        env.coordinator.redis,
        env.prefix,
        round.roundId,
      );
      // ε after every aggregated round, rejected ones included: each noised aggregate is charged.
      if (outcome?.privacy) epsilon = outcome.privacy.epsilon;
      const evaluation = await evaluateAdapter(base, env, shiftedTest, backdoor?.test ?? null);
      metrics.push({
        round: index + 1,
        accuracy: evaluation.accuracy,
        loss: evaluation.loss,
        ...(evaluation.backdoorAccuracy !== undefined
          ? { backdoorAccuracy: evaluation.backdoorAccuracy }
          : {}),
        participants: round.acceptedCount,
        refused: { ...tally.refused },
        bytesUp: bytes.up,
        bytesDown: bytes.down,
        adapterBytesDown: bytes.adapterDown,
        epsilon,
        decision: round.state === 'COMMITTED' || round.state === 'REJECTED' ? round.state : 'ABANDONED',
        reasons: keptOpen
          ? [`offline: no device checked in before the selection timeout; ${round.roundId} stays open`]
          : (outcome?.reasons ?? (round.reason ? [round.reason] : [])),
        timings: { total_ms: Date.now() - roundStarted },
      });
      progress?.update({ done: index + 1, accuracy: evaluation.accuracy, note: round.state });
      // The worker stopped the task (e.g. the ε budget cannot pay for another round): no round follows.
      const stop = await readTaskStop(env.coordinator.redis, env.prefix, env.taskId);
      if (stop !== null) {
        stopped = stop.reason;
        break;
      }
    }
    const devices = await withPromotedModel(base, env, (model) =>
      evaluatePerDevice({ model, specs, pool: task.pool, inputShape }),
    );
    const perDeviceSummary = summarizeDeviceAccuracy(devices);
    return {
      scenario,
      backend: activeBackendName() ?? backend.name,
      metrics,
      base: {
        digest: base.digest,
        cleanAccuracy: task.reference
          ? baseAccuracy(base, env, toLocalDataset(task.reference.data, inputShape))
          : null,
        shiftedAccuracy: start.accuracy,
        referenceLabel: task.reference?.label ?? null,
        testLabel: task.testLabel,
      },
      taskId: env.taskId,
      coordinatorKey: coordinatorKeyOf(env),
      prefix: env.prefix,
      roundLogPath: env.roundLogPath,
      stopped,
      devices: specs.map((s) => ({
        deviceId: s.deviceId,
        pseudonym: env.roundLog.pseudonymize(s.deviceId),
        byzantine: s.byzantine,
      })),
      attack: await attackGroundTruth({ scenario, env, devices: specs }),
      setupMs,
      perDevice: perDeviceSummary ? { summary: perDeviceSummary, devices } : null,
    };
  } finally {
    broker?.stop();
    progress?.finish();
    await fleet?.stop();
    await env.stop();
  }
}
