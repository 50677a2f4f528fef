import { TERMINAL_STATES, type RoundRecord } from '@flotilla/coordinator/server';
import type { SimEnvironment } from './sim-environment.js';
import {
  SimulationStalledError,
  StallClock,
  describeWait,
  type DeviceProgress,
  type RoundSnapshot,
} from './round-wait.js';

/** Default ms a round may go without any progress before the run fails. */
export const DEFAULT_STALL_TIMEOUT_MS = 120_000;
/** How often the coordinator's view of the round is read, ms. */
const POLL_MS = 100;

/** Options for {@link watchRound}. */
export interface WatchRoundOptions {
  env: SimEnvironment;
  /** The round before this one (null for the first): the round watched is the next to open. */
  previousRoundId: string | null;
  /** 1-based round of the run. */
  round: number;
  /** Devices the schedule brought online for this round. */
  scheduled: readonly string[];
  /** Live view of the scheduled devices' progress, updated from their hosts' events. */
  devices: ReadonlyMap<string, DeviceProgress>;
  /** Ms without progress before failing with `SimulationStalledError`. Default 120 000. */
  stallTimeoutMs?: number;
  /** Told what the round waits for, every `statusEveryMs`. */
  onStatus?: (text: string) => void;
  /** Default 10 000. */
  statusEveryMs?: number;
  /**
   * Nobody is online this round: return once the coordinator let one selection timeout pass with
   * no check-in (it keeps such a round open rather than abandon it), the round still SELECTING.
   */
  offline?: boolean;
}

/**
 * Waits until the round after `previousRoundId` opens and is decided (or abandoned) and returns
 * its record. The coordinator opens the next round within milliseconds of a decision, so the
 * round is pinned by id rather than read from the task's current round. Says what it waits for
 * every `statusEveryMs`, and throws `SimulationStalledError` (naming what it waited for) after
 * `stallTimeoutMs` without progress: no state change, check-in, update or device event.
 */
export async function watchRound(options: WatchRoundOptions): Promise<RoundRecord> {
  const { env } = options;
  const rounds = env.coordinator.rounds;
  const clock = new StallClock(options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS);
  const statusEvery = options.statusEveryMs ?? 10_000;
  let lastStatus = Date.now();
  let roundId: string | null = null;
  let firstSelectionDeadline: number | null = null;
  for (;;) {
    if (roundId === null) {
      const current = await rounds.current(env.taskId);
      if (current && current.roundId !== options.previousRoundId) roundId = current.roundId;
    }
    const record = roundId === null ? null : await rounds.get(roundId);
    if (record && TERMINAL_STATES.includes(record.state)) return record;
    if (options.offline && record?.state === 'SELECTING') {
      firstSelectionDeadline ??= record.selectionDeadline;
      if (record.selectionDeadline > firstSelectionDeadline) return record;
    }
    const checkedIn =
      record?.state === 'SELECTING' ? new Set(await rounds.waiting(record.roundId)) : new Set<string>();
    const snapshot: RoundSnapshot = {
      round: options.round,
      roundId,
      state: record?.state ?? null,
      scheduled: options.scheduled,
      checkedIn,
      selected: record?.selectedCount ?? 0,
      accepted: record?.acceptedCount ?? 0,
      skipped: record?.skippedCount ?? 0,
      devices: options.devices,
    };
    const stalled = clock.observe(snapshot);
    if (stalled) throw stalled;
    if (options.onStatus && Date.now() - lastStatus >= statusEvery) {
      lastStatus = Date.now();
      options.onStatus(describeWait(snapshot));
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * Waits until every device whose update the coordinator accepted in `round` has heard so from
 * its ack. The decision can reach the runner before the last ack reaches its device (they race
 * on different channels); sending that device dormant first would turn its acceptance into a
 * spurious refusal in the metrics.
 */
export async function awaitAcknowledgedUpdates(options: {
  env: SimEnvironment;
  round: RoundRecord;
  devices: ReadonlyMap<string, DeviceProgress>;
  stallTimeoutMs?: number;
}): Promise<void> {
  const accepted = Object.keys(await options.env.coordinator.rounds.updates(options.round.roundId));
  const waitingOn = () =>
    accepted.filter((id) => {
      const stage = options.devices.get(id)?.stage;
      return stage === 'starting' || stage === 'online' || stage === 'selected';
    });
  const deadline = Date.now() + (options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS);
  for (let pending = waitingOn(); pending.length > 0; pending = waitingOn()) {
    if (Date.now() > deadline)
      throw new SimulationStalledError(
        `round ${options.round.roundId} ${options.round.state}: waiting for ${pending.length} devices to receive the ack of their accepted update (${pending.slice(0, 8).join(', ')})`,
        Date.now() - deadline + (options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS),
      );
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
