import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  RoundPlanSchema,
  generateSigningKeyPair,
  sha256Hex,
  toBase64,
  type ServerToClientEvents,
} from '@flotilla/protocol';
import { AdapterRegistry } from '../src/shared/adapter-registry.js';
import { redisKeys } from '../src/shared/keys.js';
import { aggregateJobId, aggregateQueue } from '../src/shared/queues.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { publishRoundOutcome, type RoundOutcome } from '../src/shared/round-outcomes.js';
import { TaskRegistry } from '../src/shared/task-registry.js';
import type { AcceptedUpdate } from '../src/server/accepted-update.js';
import { DeviceRegistry } from '../src/server/device-registry.js';
import type { CoordinatorRoundEvent, RoundEvents } from '../src/server/round-events.js';
import { RoundManager, type FleetChannel, type RoundDriverLease } from '../src/server/round-manager.js';
import { newRoundRecord } from '../src/server/round-plan-builder.js';
import { RoundStore, type RoundRecord } from '../src/server/round-store.js';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import { ELIGIBLE, testTaskDefinition, waitFor, type RoundsInput } from './support/index.js';
import { PATIENCE_MS, WAITED_DEADLINE_MS } from '../../test-support/patience.js';

// RoundManager on its own: a real Redis, round store, task registry and BullMQ queue; the fleet,
// the round log and (in one test) the driver lease are recorders, so each test can see exactly
// what the manager told devices and logged.

const TASK = 'rm-task';

/** What the manager sent: to one device, or to the whole fleet (`to: 'fleet'`). */
interface Sent {
  to: string;
  event: keyof ServerToClientEvents;
  payload: unknown;
}

class RecordingFleet implements FleetChannel {
  readonly online = new Set<string>();
  readonly sent: Sent[] = [];

  toDevice<E extends keyof ServerToClientEvents>(
    deviceId: string,
    event: E,
    ...args: Parameters<ServerToClientEvents[E]>
  ): void {
    this.sent.push({ to: deviceId, event, payload: args[0] });
  }

  broadcast<E extends keyof ServerToClientEvents>(
    event: E,
    ...args: Parameters<ServerToClientEvents[E]>
  ): void {
    this.sent.push({ to: 'fleet', event, payload: args[0] });
  }

  isOnline(deviceId: string): Promise<boolean> {
    return Promise.resolve(this.online.has(deviceId));
  }

  of(event: keyof ServerToClientEvents): Sent[] {
    return this.sent.filter((sent) => sent.event === event);
  }
}

function recordingEvents(): RoundEvents & { logged: CoordinatorRoundEvent[] } {
  const logged: CoordinatorRoundEvent[] = [];
  return {
    logged,
    append(event) {
      logged.push(event);
      return Promise.resolve(null);
    },
    endRound(end) {
      logged.push(end.build({ accepted: end.accepted.length, refused: end.refusedFallback }));
      return Promise.resolve();
    },
    pseudonymize: (deviceId) => `dev_${deviceId}`,
    commitUpdate: (roundId, blobDigest) => `${roundId}:${blobDigest}`,
    proveInclusion: () => Promise.resolve(null),
  };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** A round manager over a fresh prefix, with the task registered (no round opened yet). */
async function harness(options: { rounds?: RoundsInput; lease?: RoundDriverLease } = {}) {
  const prefix = uniquePrefix('round-manager');
  const redisOptions = redisOptionsFromUrl(testRedisUrl());
  const redis = new Redis(redisOptions);
  const keys = redisKeys(prefix);
  const rounds = new RoundStore(redis, keys);
  const tasks = new TaskRegistry({ redis, prefix, signingKey: generateSigningKeyPair() });
  const queue = aggregateQueue(redisOptions, prefix);
  const fleet = new RecordingFleet();
  const events = recordingEvents();
  const manager = new RoundManager({
    redis,
    keys,
    rounds,
    tasks,
    adapters: new AdapterRegistry({ redis, prefix }),
    queue,
    events,
    logger: pino({ level: 'silent' }),
    fleet,
    onRestart: 'resume',
    ...(options.lease ? { lease: options.lease } : {}),
  });
  cleanups.push(async () => {
    manager.stop();
    await queue.close();
    redis.disconnect();
  });
  const base = { digest: sha256Hex(new TextEncoder().encode('stand-in base')), bytes: 256 };
  const { task } = await tasks.createTask(
    testTaskDefinition(base, {
      taskId: TASK,
      // Selection sizes: targetSelect = ceil(2 * 1.5) = 3, minSelect = max(2, ceil(2 * 1)) = 2.
      rounds: {
        goalCount: 2,
        minReports: 2,
        overSelection: 1.5,
        minGoalFraction: 1,
        selectionTimeoutMs: 60_000,
        reportingDeadlineMs: 60_000,
        ...options.rounds,
      },
    }),
  );
  const current = async (): Promise<RoundRecord> => {
    const round = await rounds.current(TASK);
    if (!round) throw new Error('no current round');
    return round;
  };
  const checkIn = (deviceId: string, eligibility = ELIGIBLE.eligibility) =>
    manager.checkIn(deviceId, { ...ELIGIBLE, eligibility, taskId: TASK }, task);
  const devices = new DeviceRegistry({ redis, prefix });
  return {
    prefix,
    redis,
    keys,
    rounds,
    tasks,
    devices,
    task,
    queue,
    fleet,
    events,
    manager,
    current,
    checkIn,
  };
}

type Harness = Awaited<ReturnType<typeof harness>>;

/** Opens round 1 and checks in three online devices: the round selects them all (REPORTING). */
async function reporting(h: Harness): Promise<RoundRecord> {
  await h.manager.onTaskChanged(TASK);
  for (const deviceId of ['d1', 'd2', 'd3']) {
    // Enrolled: an update is stored only for an active device.
    await h.devices.registerDevice({ deviceId, publicKey: toBase64(generateSigningKeyPair().publicKey) });
    h.fleet.online.add(deviceId);
    expect(await h.checkIn(deviceId)).toEqual({ status: 'waiting' });
  }
  return waitFor(async () => {
    const round = await h.current();
    return round.state === 'REPORTING' ? round : null;
  });
}

function acceptedUpdate(deviceId: string, acceptedAt: number): AcceptedUpdate {
  return {
    updateId: `u-${deviceId}`,
    deviceId,
    devicePseudonym: `dev_${deviceId}`,
    blobDigest: sha256Hex(new TextEncoder().encode(deviceId)),
    blobBytes: 100,
    numExamples: 10,
    norm: 0.5,
    reportedNorm: 0.5,
    clipped: false,
    quantization: 'none',
    signature: 'not-checked-here',
    acceptedAt,
  };
}

async function accept(h: Harness, roundId: string, deviceId: string): Promise<void> {
  const now = Date.now();
  const stored = await h.rounds.accept(roundId, deviceId, JSON.stringify(acceptedUpdate(deviceId, now)), now);
  expect(stored.status).toBe('OK');
}

/** Round 1 closed for aggregation: d1 and d2 sent updates, d3 skipped. */
async function aggregating(h: Harness): Promise<RoundRecord> {
  const round = await reporting(h);
  await accept(h, round.roundId, 'd1');
  await accept(h, round.roundId, 'd2');
  expect(await h.rounds.skip(round.roundId, 'd3', JSON.stringify({ reason: 'no-data' }))).toBe('OK');
  await h.manager.afterResponse(round.roundId);
  const closed = await h.current();
  expect(closed.state).toBe('AGGREGATING');
  return closed;
}

function outcome(round: RoundRecord, decision: RoundOutcome['decision']): RoundOutcome {
  return {
    taskId: round.taskId,
    roundId: round.roundId,
    decision,
    version: decision === 'COMMITTED' ? 1 : null,
    manifestDigest: decision === 'COMMITTED' ? sha256Hex(new TextEncoder().encode('manifest')) : null,
    reasons: decision === 'COMMITTED' ? ['audit passed'] : ['drift above threshold'],
  };
}

describe('RoundManager', () => {
  it("opens a new task's first round in SELECTING with the task's selection sizes", async () => {
    const h = await harness();
    await h.manager.onTaskChanged(TASK);
    const round = await h.current();
    expect(round).toMatchObject({
      roundId: `${TASK}:1`,
      roundNumber: 1,
      state: 'SELECTING',
      targetSelect: 3,
      minSelect: 2,
    });
    // A second notice of the same task opens nothing more.
    await h.manager.onTaskChanged(TASK);
    expect((await h.current()).roundId).toBe(`${TASK}:1`);
  });

  it('tells an ineligible device or one with too small a budget to retry, and lets an eligible one wait', async () => {
    const h = await harness();
    await h.manager.onTaskChanged(TASK);
    const roundId = (await h.current()).roundId;
    expect(await h.checkIn('d1', { ...ELIGIBLE.eligibility, charging: false })).toMatchObject({
      status: 'retry',
      reason: 'not-eligible',
    });
    const small = await h.manager.checkIn(
      'd1',
      { ...ELIGIBLE, budget: { maxSeconds: 60, maxBytes: 10 }, taskId: TASK },
      h.task,
    );
    expect(small).toMatchObject({ status: 'retry', reason: 'budget-too-small' });
    expect(await h.checkIn('d1')).toEqual({ status: 'waiting' });
    expect(await h.rounds.waiting(roundId)).toEqual(['d1']);
  });

  it('selects when targetSelect devices wait, logs the round, sends the plans and turns late devices away', async () => {
    const h = await harness();
    const round = await reporting(h);
    expect(round.selectedCount).toBe(3);
    const plans = h.fleet.of('round:plan');
    expect(plans.map((sent) => sent.to).sort()).toEqual(['d1', 'd2', 'd3']);
    expect(RoundPlanSchema.parse(plans[0]?.payload).roundId).toBe(round.roundId);
    expect(h.events.logged.map((event) => event.type)).toEqual(['round.opened', 'round.selected']);
    const selected = h.events.logged[1];
    expect(selected?.type === 'round.selected' ? [...selected.devices].sort() : null).toEqual([
      'dev_d1',
      'dev_d2',
      'dev_d3',
    ]);
    // The round is full; a selected device that checks in again gets its plan again.
    expect(await h.checkIn('d4')).toMatchObject({ status: 'retry', reason: 'round-full' });
    expect(await h.checkIn('d2')).toEqual({ status: 'waiting' });
    await waitFor(() => h.fleet.of('round:plan').filter((sent) => sent.to === 'd2').length === 2);
  });

  it('closes with quorum once every selected device answered and enqueues one job with the accepted updates', async () => {
    const h = await harness();
    const round = await aggregating(h);
    expect(h.fleet.of('round:closed').map((sent) => sent.payload)).toEqual([
      { roundId: round.roundId, taskId: TASK, state: 'AGGREGATING' },
    ]);
    expect(h.events.logged.at(-1)).toMatchObject({
      type: 'round.closed',
      accepted: 2,
      refused: 0,
      reason: 'goal-reached',
    });
    const job = await h.queue.getJob(aggregateJobId(round.roundId));
    expect(job?.data.updates.map((update) => update.updateId).sort()).toEqual(['u-d1', 'u-d2']);
    expect(job?.data).toMatchObject({
      taskId: TASK,
      roundId: round.roundId,
      roundNumber: 1,
      parentVersion: 0,
    });
  });

  it('runs the selection window from the first check-in: devices arriving late in a window are not abandoned', async () => {
    const h = await harness({ rounds: { selectionTimeoutMs: 2_000 } });
    await h.manager.onTaskChanged(TASK);
    for (const deviceId of ['d1', 'd2']) h.fleet.online.add(deviceId);
    // d1 checks in 0.3 s before the round's selection timeout (as after an idle wait).
    const opened = await h.current();
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, opened.selectionDeadline - 300 - Date.now())),
    );
    expect(await h.checkIn('d1')).toEqual({ status: 'waiting' });
    // The timeout passes with d1 alone: its window, 2 s from its check-in, still runs.
    const moved = await waitFor(async () => {
      const round = await h.rounds.get(opened.roundId);
      return round?.state !== 'SELECTING' || round.selectionDeadline !== opened.selectionDeadline
        ? round
        : null;
    });
    expect(moved.state).toBe('SELECTING');
    expect(moved.selectionDeadline - (moved.firstCheckInAt ?? 0)).toBeLessThanOrEqual(2_000);
    // d2 arrives after the round's first timeout; at the window's end the two (minSelect 2) are selected.
    expect(await h.checkIn('d2')).toEqual({ status: 'waiting' });
    const selected = await waitFor(async () => {
      const round = await h.current();
      return round.state === 'REPORTING' ? round : null;
    });
    expect(selected).toMatchObject({ roundNumber: 1, selectedCount: 2 });
    expect(h.fleet.of('round:closed')).toEqual([]);
  });

  it('says why reporting ended: `deadline` only when a selected device had not answered when it closed', async () => {
    const rounds = { goalCount: 3, overSelection: 1, minReports: 2, reportingDeadlineMs: WAITED_DEADLINE_MS };
    const closedFor = (h: Harness) =>
      waitFor(
        () => Promise.resolve(h.events.logged.find((e) => e.type === 'round.closed') ?? null),
        PATIENCE_MS,
      );
    // d3 never answers: the deadline closes the round below its goal.
    const late = await harness({ rounds });
    const lateRound = await reporting(late);
    await accept(late, lateRound.roundId, 'd1');
    await accept(late, lateRound.roundId, 'd2');
    expect(await closedFor(late)).toMatchObject({ accepted: 2, reason: 'deadline' });
    // Every device answered, but the last answer's own check never ran (a lost forward, another
    // process): the deadline timer closes the round, and the log still says all-answered.
    const all = await harness({ rounds });
    const allRound = await reporting(all);
    await accept(all, allRound.roundId, 'd1');
    await accept(all, allRound.roundId, 'd2');
    expect(await all.rounds.skip(allRound.roundId, 'd3', JSON.stringify({ reason: 'no-data' }))).toBe('OK');
    expect(await closedFor(all)).toMatchObject({ accepted: 2, reason: 'all-answered' });
  });

  it('abandons a round without quorum at its deadline and opens the next', async () => {
    const h = await harness({ rounds: { reportingDeadlineMs: WAITED_DEADLINE_MS } });
    const round = await reporting(h);
    await accept(h, round.roundId, 'd1');
    const next = await waitFor(async () => {
      const current = await h.current();
      return current.roundNumber === 2 ? current : null;
    });
    expect(next.state).toBe('SELECTING');
    const abandoned = await h.rounds.get(round.roundId);
    expect(abandoned).toMatchObject({ state: 'ABANDONED', reason: 'quorum missed: 1 of 2 updates' });
    expect(h.fleet.of('round:closed').map((sent) => sent.payload)).toEqual([
      {
        roundId: round.roundId,
        taskId: TASK,
        state: 'ABANDONED',
        reason: 'quorum missed: 1 of 2 updates',
      },
    ]);
    expect(h.events.logged.at(-1)).toMatchObject({ type: 'round.abandoned', accepted: 1 });
  });

  it("applies the worker's promotion once: the fleet hears of it and the next round opens", async () => {
    const h = await harness();
    const round = await aggregating(h);
    const committed = outcome(round, 'COMMITTED');
    await h.manager.applyOutcome(committed);
    expect(await h.rounds.get(round.roundId)).toMatchObject({ state: 'COMMITTED', reason: 'audit passed' });
    expect(h.fleet.of('adapter:promoted').map((sent) => sent.payload)).toEqual([
      { taskId: TASK, version: 1, manifestDigest: committed.manifestDigest },
    ]);
    expect(h.fleet.of('round:closed').at(-1)?.payload).toEqual({
      roundId: round.roundId,
      taskId: TASK,
      state: 'COMMITTED',
      reason: 'audit passed',
    });
    expect(await h.current()).toMatchObject({ roundNumber: 2, state: 'SELECTING' });
    const told = h.fleet.sent.length;
    await h.manager.applyOutcome(committed);
    expect(h.fleet.sent.length).toBe(told);
    expect((await h.current()).roundNumber).toBe(2);
  });

  it('applies a rejection without a promotion', async () => {
    const h = await harness();
    const round = await aggregating(h);
    await h.manager.applyOutcome(outcome(round, 'REJECTED'));
    expect(await h.rounds.get(round.roundId)).toMatchObject({ state: 'REJECTED' });
    expect(h.fleet.of('adapter:promoted')).toEqual([]);
    expect(h.fleet.of('round:closed').at(-1)?.payload).toMatchObject({ state: 'REJECTED' });
  });

  it('ignores a decision for a round that is not aggregating', async () => {
    const h = await harness();
    const round = await reporting(h);
    await h.manager.applyOutcome(outcome(round, 'COMMITTED'));
    expect((await h.current()).state).toBe('REPORTING');
    expect(h.fleet.of('adapter:promoted')).toEqual([]);
  });

  it('on start, abandons a round caught in CONFIGURING and applies the stored decision of an AGGREGATING one', async () => {
    const h = await harness();
    await h.rounds.create({ ...newRoundRecord(h.task, 1, Date.now()), state: 'CONFIGURING' });
    await h.manager.start();
    expect(await h.rounds.get(`${TASK}:1`)).toMatchObject({
      state: 'ABANDONED',
      reason: 'coordinator restarted during configuration',
    });
    const second = await h.current();
    expect(second).toMatchObject({ roundNumber: 2, state: 'SELECTING' });

    // Round 2 reached AGGREGATING and its decision was stored while no process drove.
    await h.redis.hset(h.keys.round(second.roundId), 'state', 'AGGREGATING');
    await publishRoundOutcome(h.redis, h.prefix, outcome(second, 'COMMITTED'));
    await h.manager.start();
    expect(await h.rounds.get(second.roundId)).toMatchObject({ state: 'COMMITTED' });
    expect(await h.current()).toMatchObject({ roundNumber: 3, state: 'SELECTING' });
  });

  it('on a follower, passes check-ins and answers on to the driver instead of acting', async () => {
    const nudges: Array<{ kind: string; roundId: string }> = [];
    const lease: RoundDriverLease = {
      holds: () => false,
      nudge: (nudge) => {
        nudges.push(nudge);
        return Promise.resolve();
      },
    };
    const h = await harness({ lease });
    // A follower opens nothing either: the driver hears of new tasks itself.
    await h.manager.onTaskChanged(TASK);
    expect(await h.rounds.current(TASK)).toBeNull();
    await h.rounds.create(newRoundRecord(h.task, 1, Date.now()));
    h.fleet.online.add('d1');
    expect(await h.checkIn('d1')).toEqual({ status: 'waiting' });
    await waitFor(() => nudges.length > 0);
    await h.manager.afterResponse(`${TASK}:1`);
    expect(nudges).toEqual([
      { kind: 'select', roundId: `${TASK}:1` },
      { kind: 'response', roundId: `${TASK}:1` },
    ]);
    expect((await h.current()).state).toBe('SELECTING');
  });
});
