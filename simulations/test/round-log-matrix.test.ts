import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DpPolicySchema,
  FlotillaError,
  STRATEGY_NAMES,
  StrategyConfigSchema,
  StrategyNameSchema,
  biasTensorName,
  encodeFloat32Tensors,
  generateSigningKeyPair,
  isServerOptimizer,
  loraTensorNames,
  sha256Hex,
  toBase64,
  weightTensorName,
  type AdapterMode,
  type RoundLogRecord,
  type RoundPlan,
  type StrategyName,
  type TaskDefinition,
  type TaskDefinitionInput,
} from '@flotilla/protocol';
import { createCoordinator, roundLogEvents, type Coordinator } from '@flotilla/coordinator/server';
import {
  decomposes,
  defaultRoundLogPath,
  readRoundLog,
  redisOptionsFromUrl,
  strategyCombinationProblem,
  type LoraRuleName,
} from '@flotilla/coordinator/shared';
import { startAggregationWorker, type AggregationWorker } from '@flotilla/coordinator/worker';

/** What the worker's holdout evaluation returns (coordinator/src/worker/audit/holdout.ts). */
interface HoldoutMetrics {
  accuracy?: number;
  examples?: number;
}
import {
  connectFleet,
  coverablePairs,
  fakeBaseBundle,
  flotilla,
  openStateDirRoundLog,
  pairsOf,
  pairwiseCover,
  readSignedLog,
  testRandom,
  waitFor,
} from './support/index.js';
import type { Combination, TestDevice } from './support/index.js';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';

// Every honest log verifies, over the whole matrix: every aggregation strategy × every LoRA rule
// (named, or left to its default) × adapter mode × DP on/off × one-stage/hierarchical aggregation ×
// outcome (committed, rejected, abandoned at the deadline, abandoned in selection with too few devices checked in).
//
// The full product is 2,816 combinations; run as rounds it would take hours. This runs a pairwise
// covering array instead, generated and checked by code (support/covering-array.ts): every value of
// every factor appears, and every pair of values that can occur together appears in at least one
// run. It is built in two parts: the runs that aggregate (committed, rejected) cover every pair of
// the six factors among themselves, so every strategy × rule, rule × mode, mode × DP, DP ×
// hierarchical … pair is aggregated, logged and recomputed at least once; the abandoned runs cover
// every pair that involves an abandoned outcome. 44 + 22 runs.
//
// Invalid combinations are those the product refuses, by its own rules (strategyCombinationProblem,
// the table the coordinator registers tasks by): DP with a strategy that is not a mean, DP with the
// product rule, the ffa rule with a lora adapter (it trains A). Every such task is refused at
// registration, which this test asserts for each one. Hierarchical aggregation with a strategy
// that does not decompose into sums is not refused: the worker aggregates it in one stage, which
// this test asserts from the log.
//
// Real rounds: a real coordinator and aggregation worker (in this process) on the test Redis,
// devices over socket.io and HTTP submitting synthetic deltas through the real protocol (no
// training: the deltas are seeded random values of the mode's tensors). A rejection is the worker's
// own: the server holdout it is given (the `evaluate` dependency, here a fixed rule in place of a
// model) scores any change to a rejected run's adapter 40 points lower, a hard holdout failure.
// Each environment's log is then verified by the real CLI, `flotilla audit
// verify <log> --key <coordinator key> --blobs <blob dir> --json`, which recomputes every aggregate
// the log determines from the retained deltas (no noise, no server-optimizer state, not the product
// rule) and must recompute every one of them.

type MatrixFactors = {
  strategy: readonly StrategyName[];
  rule: ReadonlyArray<'default' | LoraRuleName>;
  mode: readonly AdapterMode[];
  dp: ReadonlyArray<'off' | 'on'>;
  stages: ReadonlyArray<'one-stage' | 'hierarchical'>;
  outcome: ReadonlyArray<'committed' | 'rejected' | 'abandoned' | 'abandoned-in-selection'>;
};
const FACTORS: MatrixFactors = {
  strategy: STRATEGY_NAMES,
  rule: ['default', 'ffa', 'fedit', 'product'],
  mode: ['lora', 'ffa-lora', 'bias', 'full'],
  dp: ['off', 'on'],
  stages: ['one-stage', 'hierarchical'],
  outcome: ['committed', 'rejected', 'abandoned', 'abandoned-in-selection'],
};
type Run = Combination<typeof FACTORS>;

const MODULE = 'dense';
const SHAPES = { in: 4, out: 3 };
const R = 2;
const DEVICES = 4;

function taskPolicy(run: Pick<Run, 'strategy' | 'rule' | 'mode' | 'dp'>) {
  return {
    adapter: { mode: run.mode },
    policy: {
      strategy: {
        name: run.strategy,
        ...(run.rule === 'default' ? {} : { loraRule: run.rule }),
        ...(run.strategy === 'norm-bounding' ? { normBound: 0.5 } : {}),
      },
      ...(run.dp === 'on'
        ? { dp: { noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 50, populationSize: DEVICES } }
        : {}),
    },
  };
}

/** The product's own rule: null when a task of this combination is accepted. */
function problemOf(run: Pick<Run, 'strategy' | 'rule' | 'mode' | 'dp'>): string | null {
  const { adapter, policy } = taskPolicy(run);
  // Parsed as registration parses them: the rule's default filled in.
  return strategyCombinationProblem({
    adapter,
    policy: {
      strategy: StrategyConfigSchema.parse(policy.strategy),
      ...(policy.dp ? { dp: DpPolicySchema.parse(policy.dp) } : {}),
    },
  });
}
const valid = (run: Run) => problemOf(run) === null;

/** The factors with the outcome narrowed to those that aggregate, or to the abandoned ones. */
const AGGREGATING: MatrixFactors = { ...FACTORS, outcome: ['committed', 'rejected'] };
const ABANDONING: MatrixFactors = { ...FACTORS, outcome: ['abandoned', 'abandoned-in-selection'] };
const aggregating = pairwiseCover(AGGREGATING, valid);
const abandoning = pairwiseCover(ABANDONING, valid, (pair) => pair.includes('outcome='));
const RUNS: Run[] = [...aggregating, ...abandoning];

/** The LoRA rule the worker runs and logs for a run (see effectiveLoraRule, docs/protocol.md). */
function loggedRule(run: Run): string {
  const configured = run.rule === 'default' ? 'fedit' : run.rule;
  if (run.mode === 'ffa-lora' && configured === 'fedit') return 'ffa';
  if ((run.mode === 'bias' || run.mode === 'full') && configured === 'product') return 'fedit';
  return configured;
}

function taskDefinition(
  run: Run,
  index: number,
  base: { digest: string; bytes: number },
): TaskDefinitionInput {
  const { policy } = taskPolicy(run);
  return {
    taskId: `m${index}`,
    baseModel: { digest: base.digest, format: 'tfjs-layers-bundle', bytes: base.bytes },
    adapter: { mode: run.mode, targetModules: [MODULE], r: R, alpha: 4, seed: 1 },
    moduleShapes: { [MODULE]: SHAPES },
    rounds: {
      goalCount: DEVICES,
      overSelection: 1,
      minReports: 3,
      // Only the run abandoned in selection waits out its selection.
      selectionTimeoutMs: run.outcome === 'abandoned-in-selection' ? 300 : 120_000,
      reportingDeadlineMs: 120_000,
      maxRounds: 1,
      training: { epochs: 1, batchSize: 8, learningRate: 0.1, fedProxMu: 0, optimizer: 'sgd' },
    },
    policy: {
      allowedModules: [MODULE],
      clipNorm: 1,
      maxBlobBytes: 4096,
      ...policy,
      // Nothing is flagged; only the drift from an all-zero base (the rejected runs) fails.
      audit: { madThreshold: 1e6, maxFlaggedFraction: 1, maxModuleDrift: 1e9 },
    },
    createdAt: Date.now(),
  };
}

/** A device's delta for the adapter mode: seeded values, L2 norm well inside the clip bound 1. */
function delta(run: Run, index: number, device: number): Uint8Array {
  const random = testRandom(1000 * index + device);
  const values = (n: number) => Float32Array.from({ length: n }, () => 0.04 * random());
  const names = loraTensorNames(MODULE);
  const tensors = new Map<string, { shape: number[]; values: Float32Array }>();
  if (run.mode === 'lora' || run.mode === 'ffa-lora') {
    tensors.set(names.b, { shape: [SHAPES.out, R], values: values(SHAPES.out * R) });
    // FFA-LoRA's frozen A: half the devices send its zero delta, half leave it out.
    if (run.mode === 'lora') tensors.set(names.a, { shape: [R, SHAPES.in], values: values(R * SHAPES.in) });
    else if (device % 2 === 0)
      tensors.set(names.a, { shape: [R, SHAPES.in], values: new Float32Array(R * SHAPES.in) });
  } else {
    tensors.set(biasTensorName(MODULE), { shape: [SHAPES.out], values: values(SHAPES.out) });
    if (run.mode === 'full')
      tensors.set(weightTensorName(MODULE), {
        shape: [SHAPES.out, SHAPES.in],
        values: values(SHAPES.out * SHAPES.in),
      });
  }
  return encodeFloat32Tensors(tensors);
}

interface Env {
  coordinator: Coordinator;
  worker: AggregationWorker;
  stateDir: string;
  redis: Redis;
  key: string;
  close(): Promise<void>;
}

/** Task ids of the runs that must be rejected (their holdout says any change hurts). */
const REJECTING = new Set<string>();

/**
 * The worker's server holdout for the matrix: 90% for the adapter as it started, and for a
 * candidate of a run that must be rejected 50% once it changed anything devices train (`lora_B`,
 * bias and kernel offsets; `lora_A` of an FFA-LoRA adapter is frozen and plain LoRA changes B too).
 */
function holdout(
  task: TaskDefinition,
  adapter: Map<string, { values: Float32Array }>,
): Promise<HoldoutMetrics> {
  const changed = [...adapter].some(
    ([name, t]) => !name.endsWith('lora_A.weight') && t.values.some((v) => v !== 0),
  );
  return Promise.resolve({ accuracy: REJECTING.has(task.taskId) && changed ? 0.5 : 0.9, examples: 1000 });
}

async function startEnv(label: string, hierarchical: boolean): Promise<Env> {
  const stateDir = mkdtempSync(join(tmpdir(), `flotilla-matrix-${label}-`));
  const prefix = uniquePrefix(`matrix-${label}`);
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  const logger = pino({ level: 'silent' });
  const signingKey = generateSigningKeyPair();
  // One writer for coordinator and worker, retaining deltas so aggregates can be recomputed.
  const roundLog = await openStateDirRoundLog({
    ...{ redis, prefix, stateDir, signingKey },
    retainDeltas: { ttlMs: 24 * 3600 * 1000 },
  });
  const coordinator = await createCoordinator({
    redisUrl: testRedisUrl(),
    prefix,
    stateDir,
    host: '127.0.0.1',
    port: 0,
    logger,
    signingKey,
    operatorToken: 'operator-token-for-tests-0123456789',
    rateLimit: { perSecond: 1000, burst: 2000 },
    roundEvents: roundLogEvents(logger, roundLog),
  });
  const worker = await startAggregationWorker({
    redisUrl: testRedisUrl(),
    prefix,
    stateDir,
    signingKey,
    roundLog,
    logger,
    useThread: false,
    concurrency: 4,
    noiseSeed: 'matrix',
    evaluate: holdout,
    // Four updates in shards of two: every round of a strategy that decomposes runs in shard jobs.
    ...(hierarchical ? { hierarchical: { threshold: DEVICES, shardSize: 2 } } : {}),
  });
  return {
    coordinator,
    worker,
    stateDir,
    redis,
    key: toBase64(signingKey.publicKey),
    async close() {
      await worker.close();
      await coordinator.close();
      redis.disconnect();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

const TERMINAL = { committed: 'COMMITTED', rejected: 'REJECTED' } as const;

/** One run: its task, its devices, its round, until the round's end is stored. */
async function runRound(env: Env, run: Run, index: number): Promise<void> {
  const base = fakeBaseBundle({ modules: { [MODULE]: SHAPES } });
  if (run.outcome === 'rejected') REJECTING.add(`m${index}`);
  const digest = sha256Hex(base);
  if (!(await env.coordinator.blobs.has(digest))) await env.coordinator.blobs.put(digest, base);
  // Abandoned in selection: one device checks in, fewer than the round selects at its timeout.
  const devices: TestDevice[] = await connectFleet(
    env.coordinator,
    run.outcome === 'abandoned-in-selection' ? 1 : DEVICES,
    `m${index}d`,
  );
  try {
    const { task } = await env.coordinator.createTask(
      taskDefinition(run, index, { digest, bytes: base.length }),
    );
    const roundId = `${task.taskId}:1`;
    for (const d of devices) expect((await d.checkIn(task.taskId)).ok).toBe(true);
    if (run.outcome !== 'abandoned-in-selection') {
      const plans = await Promise.all(devices.map((d) => d.waitForPlan(roundId, 60_000)));
      await Promise.all(
        devices.map(async (d, i) => {
          const plan = plans[i] as RoundPlan;
          // Abandoned: two report, two skip; everyone answered below the quorum of three.
          if (run.outcome === 'abandoned' && i >= 2) {
            expect(
              (await d.emit('update:skip', { roundId, reason: 'validation-gate', detail: 'x' })).ok,
            ).toBe(true);
            return;
          }
          const ack = await d.report(plan, delta(run, index, i));
          expect(ack, `run ${index} device ${i}`).toMatchObject({ ok: true });
        }),
      );
    }
    const expected =
      run.outcome === 'committed' || run.outcome === 'rejected' ? TERMINAL[run.outcome] : 'ABANDONED';
    const round = await waitFor(
      async () => {
        const r = await env.coordinator.rounds.get(roundId);
        return r && ['COMMITTED', 'REJECTED', 'ABANDONED'].includes(r.state) ? r : null;
      },
      120_000,
      `run ${index} (${JSON.stringify(run)}) to end`,
    );
    expect(round.state, `run ${index} ${JSON.stringify(run)}: ${round.reason ?? ''}`).toBe(expected);
  } finally {
    for (const d of devices) d.disconnect();
  }
}

/** The records of one task's round 1, by type. */
function recordsOf(records: RoundLogRecord[], index: number): RoundLogRecord[] {
  return records.filter((r) => 'roundId' in r.event && r.event.roundId === `m${index}:1`);
}

/** What each run must have left in the log. */
function checkRunRecords(records: RoundLogRecord[], run: Run, index: number): void {
  const own = recordsOf(records, index);
  const types = own.map((r) => r.event.type);
  const label = `run ${index} ${JSON.stringify(run)}`;
  if (run.outcome === 'abandoned-in-selection') {
    expect(types, label).toEqual(['round.abandoned']);
    return;
  }
  const reporting = ['round.opened', 'round.selected', 'update.accepted', 'update.accepted'];
  if (run.outcome === 'abandoned') {
    expect(types, label).toEqual([...reporting, 'round.abandoned']);
    return;
  }
  const decision = run.outcome === 'committed' ? ['audit', 'promotion'] : ['audit', 'rejection'];
  expect(types, label).toEqual([
    ...reporting,
    'update.accepted',
    'update.accepted',
    'round.closed',
    'aggregation',
    ...decision,
  ]);
  const aggregation = own.find((r) => r.event.type === 'aggregation')?.event;
  if (aggregation?.type !== 'aggregation') throw new Error(label);
  expect(aggregation.strategy, label).toBe(run.strategy);
  expect(aggregation.loraRule, label).toBe(loggedRule(run));
  expect(aggregation.noiseMultiplier, label).toBe(run.dp === 'on' ? 1 : 0);
  expect(aggregation.epsilon === null, label).toBe(run.dp === 'off');
  expect(aggregation.participants, label).toHaveLength(DEVICES);
  const shards = 'hierarchicalShardCounts' in aggregation.strategyOptions;
  const configured = { name: run.strategy, loraRule: run.rule === 'default' ? 'fedit' : run.rule } as const;
  expect(shards, label).toBe(run.stages === 'hierarchical' && decomposes(configured));
  const audit = own.find((r) => r.event.type === 'audit')?.event;
  expect(audit?.type === 'audit' && audit.decision, label).toBe(
    run.outcome === 'committed' ? 'pass' : 'fail',
  );
}

/** Aggregations the log alone determines: `audit verify --blobs` must recompute every one. */
function recomputable(records: RoundLogRecord[]): number {
  return records.filter(
    (r) =>
      r.event.type === 'aggregation' &&
      r.event.deltasRetainedUntil !== null &&
      r.event.noiseMultiplier === 0 &&
      r.event.loraRule !== 'product' &&
      !isServerOptimizer(StrategyNameSchema.parse(r.event.strategy)),
  ).length;
}

const envs: Env[] = [];
afterAll(async () => {
  for (const env of envs.splice(0)) await env.close();
});

describe('the round-log matrix', () => {
  it('is a pairwise cover of every combination the product accepts', () => {
    const all = coverablePairs(FACTORS, valid);
    const covered = new Set(RUNS.flatMap((run) => pairsOf(FACTORS, run)));
    expect([...all].filter((pair) => !covered.has(pair))).toEqual([]);
    // Every pair of the other factors is aggregated (committed or rejected) at least once.
    const aggregated = new Set(aggregating.flatMap((run) => pairsOf(FACTORS, run)));
    const needed = coverablePairs(AGGREGATING, valid);
    expect([...needed].filter((pair) => !aggregated.has(pair))).toEqual([]);
    for (const [factor, values] of Object.entries(FACTORS))
      for (const value of values) expect(RUNS.some((run) => run[factor as keyof Run] === value)).toBe(true);
    expect(RUNS.every(valid)).toBe(true);
    expect(RUNS.length).toBeLessThan(80);
  });

  it('every task the product cannot run is refused at registration, with the rule it breaks', async () => {
    const env = await startEnv('refused', false);
    envs.push(env);
    const base = fakeBaseBundle({ modules: { [MODULE]: SHAPES } });
    const digest = sha256Hex(base);
    await env.coordinator.blobs.put(digest, base);
    let refused = 0;
    for (const strategy of FACTORS.strategy)
      for (const rule of FACTORS.rule)
        for (const mode of FACTORS.mode)
          for (const dp of FACTORS.dp) {
            const combination = {
              strategy,
              rule,
              mode,
              dp,
              stages: 'one-stage',
              outcome: 'committed',
            } as const;
            const problem = problemOf(combination);
            if (problem === null) continue;
            const definition = taskDefinition(combination, 1000 + refused, { digest, bytes: base.length });
            const error = await env.coordinator.createTask(definition).then(
              () => null,
              (e: unknown) => e,
            );
            expect(error, JSON.stringify(combination)).toBeInstanceOf(FlotillaError);
            expect(error).toMatchObject({ code: 'BAD_REQUEST', message: problem });
            refused++;
          }
    expect(refused).toBeGreaterThan(0);
  });

  it.each([
    ['one-stage', false],
    ['hierarchical', true],
  ] as const)(
    '%s runs: every honest log verifies with audit verify --blobs, recomputation included',
    async (stages, hierarchical) => {
      const indexed = RUNS.map((run, index) => ({ run, index })).filter(({ run }) => run.stages === stages);
      // A few coordinators, each running its share of the rounds side by side.
      const chunks: Array<typeof indexed> = [];
      for (let i = 0; i < indexed.length; i += 12) chunks.push(indexed.slice(i, i + 12));
      let recomputed = 0;
      for (const [c, chunk] of chunks.entries()) {
        const env = await startEnv(`${stages}-${c}`, hierarchical);
        envs.push(env);
        await Promise.all(chunk.map(({ run, index }) => runRound(env, run, index)));
        // A round's end record follows its stored state: wait until every run has its last one.
        const records = await waitFor(
          async () => {
            const log = await readRoundLog(env.redis, env.coordinator.prefix);
            const done = chunk.every(({ index }) => {
              const last = recordsOf(log, index).at(-1)?.event.type;
              return last === 'promotion' || last === 'rejection' || last === 'round.abandoned';
            });
            return done ? log : null;
          },
          30_000,
          'every run logged',
        );
        for (const { run, index } of chunk) checkRunRecords(records, run, index);
        const lines = await readSignedLog(env.redis, env.coordinator.prefix);
        const cli = await flotilla([
          'audit',
          'verify',
          defaultRoundLogPath(env.stateDir),
          '--key',
          env.key,
          '--blobs',
          join(env.stateDir, 'blobs'),
          '--json',
        ]);
        const verdict = JSON.parse(cli.stdout) as {
          ok: boolean;
          records: number;
          problems: unknown[];
          recomputed: number;
        };
        expect(verdict.problems).toEqual([]);
        expect(verdict).toMatchObject({
          ok: true,
          records: lines.length,
          recomputed: recomputable(records),
        });
        expect(cli.code).toBe(0);
        recomputed += verdict.recomputed;
        await env.close();
        envs.splice(envs.indexOf(env), 1);
      }
      expect(recomputed).toBeGreaterThan(0);
    },
    // About a minute alone on 2 cores; generous for a loaded machine.
    600_000,
  );
});
