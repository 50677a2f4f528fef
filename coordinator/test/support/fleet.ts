// useTestFleet(): an in-process coordinator, the test task and connected protocol-level test
// devices, started and stopped around a describe block. Tests import it, like every other piece
// of the coordinator tests' support, from ./index.js.
import { afterAll, beforeAll } from 'vitest';
import type { RoundLogRecord, RoundPlan } from '@flotilla/protocol';
import type { Coordinator, CoordinatorOptions } from '../../src/server/coordinator.js';
import { startTestCoordinator, type TestCoordinator } from './test-coordinator.js';
import { createTestTask, type TestTaskOptions } from './test-task.js';
import { TestDevice } from './test-device.js';
import { roundLogVerdict, roundLogWhen } from './round-log-reads.js';
import type { RoundState } from '../../src/server/round-machine.js';
import type { RoundRecord } from '../../src/server/round-store.js';
import { waitFor } from './wait-for.js';
import { PATIENCE_MS } from '../../../test-support/patience.js';

export interface TestFleetOptions {
  /** Options of the coordinator ({@link startTestCoordinator}). */
  coordinator?: Partial<CoordinatorOptions>;
  /** The test task ({@link createTestTask}); registered before the devices connect unless `taskAfterDevices`. */
  task?: TestTaskOptions;
  /** Several test tasks, registered in this order, instead of `task` (`[]`: none). */
  tasks?: TestTaskOptions[];
  taskAfterDevices?: boolean;
  /** Devices enrolled and connected ({@link connectFleet}), ids `<label>-0…`. Default 0. */
  devices?: number;
  label?: string;
}

export interface TestFleet {
  readonly tc: TestCoordinator;
  readonly devices: TestDevice[];
  /** Round `roundId` once it is in `state` (polled until PATIENCE_MS). */
  roundIn(roundId: string, state: RoundState): Promise<RoundRecord>;
  /**
   * Round `roundId` once its selection deadline has moved more than `beyondMs` past the one it had
   * when first seen: a selection timeout passed and the round was kept open (polled until
   * PATIENCE_MS).
   */
  selectionKeptOpen(roundId: string, beyondMs?: number): Promise<RoundRecord>;
  /** Every device checks in to `taskId`; resolves with their plans for `roundId`, in device order. */
  joinRound(taskId: string, roundId: string): Promise<RoundPlan[]>;
  /** {@link roundLogWhen} on this fleet's coordinator. */
  roundLogWhen(
    what: string,
    ready: (records: RoundLogRecord[]) => boolean,
    timeoutMs?: number,
  ): Promise<RoundLogRecord[]>;
  /** {@link roundLogVerdict} on this fleet's coordinator: its stored log, once signed to the end. */
  roundLogVerdict(): ReturnType<typeof roundLogVerdict>;
}

/**
 * A coordinator, the test task and connected devices for the tests of one describe block: started
 * before them, devices disconnected and the coordinator stopped after them. Its after hook runs
 * after the block's own (vitest runs after hooks in reverse order).
 */
export function useTestFleet(options: TestFleetOptions = {}): TestFleet {
  let started: { tc: TestCoordinator; devices: TestDevice[] } | null = null;
  beforeAll(async () => {
    const tc = await startTestCoordinator(options.coordinator);
    const connect = () => connectFleet(tc.coordinator, options.devices ?? 0, options.label);
    const early = options.taskAfterDevices ? await connect() : null;
    for (const task of options.tasks ?? [options.task]) await createTestTask(tc.coordinator, task);
    started = { tc, devices: early ?? (await connect()) };
  });
  afterAll(async () => {
    for (const d of started?.devices ?? []) d.disconnect();
    await started?.tc.stop();
  });
  const running = () => {
    if (!started) throw new Error('the test fleet starts in beforeAll');
    return started;
  };
  return {
    get tc() {
      return running().tc;
    },
    get devices() {
      return running().devices;
    },
    roundIn: (roundId, state) =>
      waitFor(
        async () => {
          const round = await running().tc.coordinator.rounds.get(roundId);
          return round?.state === state ? round : null;
        },
        PATIENCE_MS,
        `${roundId} ${state}`,
      ),
    async selectionKeptOpen(roundId, beyondMs = 0) {
      const round = () => running().tc.coordinator.rounds.get(roundId);
      const first = await waitFor(round, PATIENCE_MS, roundId);
      return waitFor(
        async () => {
          const now = await round();
          return now && now.selectionDeadline > first.selectionDeadline + beyondMs ? now : null;
        },
        PATIENCE_MS,
        `${roundId} kept open in selection`,
      );
    },
    async joinRound(taskId, roundId) {
      const { devices } = running();
      await Promise.all(devices.map((d) => d.checkIn(taskId)));
      return Promise.all(devices.map((d) => d.waitForPlan(roundId)));
    },
    roundLogWhen: (what, ready, timeoutMs) => roundLogWhen(running().tc.coordinator, what, ready, timeoutMs),
    roundLogVerdict: () => roundLogVerdict(running().tc.coordinator),
  };
}

/** Registers `count` devices `<label>-0…` with the coordinator's registry and connects them. */
export async function connectFleet(
  coordinator: Coordinator,
  count: number,
  label = 'dev',
): Promise<TestDevice[]> {
  const devices = Array.from({ length: count }, (_, i) => new TestDevice(coordinator.url, `${label}-${i}`));
  for (const d of devices)
    await coordinator.devices.registerDevice({ deviceId: d.deviceId, publicKey: d.publicKey });
  const acks = await Promise.all(devices.map((d) => d.connect()));
  for (const ack of acks) if (!ack.ok) throw new Error(`connect failed: ${JSON.stringify(ack)}`);
  return devices;
}
