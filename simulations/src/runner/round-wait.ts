import type { RoundState } from '@flotilla/coordinator/server';

/**
 * What the runner knows about the round it waits for: the coordinator's view (state and counts,
 * read from Redis) and the fleet's (what each scheduled device reported from its host).
 */
export interface RoundSnapshot {
  /** 1-based round of the run. */
  round: number;
  /** Null until the coordinator opened the round. */
  roundId: string | null;
  state: RoundState | null;
  /** Devices the schedule brought online for this round. */
  scheduled: readonly string[];
  /** Scheduled devices in the coordinator's waiting set (SELECTING). */
  checkedIn: ReadonlySet<string>;
  selected: number;
  accepted: number;
  skipped: number;
  /** Per scheduled device: how far it got, as its host reported. */
  devices: ReadonlyMap<string, DeviceProgress>;
}

/** How far a scheduled device got in the round (from its host's events). */
export type DeviceProgress =
  | { stage: 'starting' }
  | { stage: 'online' }
  | { stage: 'selected' }
  | { stage: 'answered'; outcome: string }
  | { stage: 'failed'; message: string };

/** Devices named in a message at most; the rest are counted. */
const NAMED = 8;

function nameSome(ids: readonly string[], label: (id: string) => string): string {
  const shown = ids.slice(0, NAMED).map(label);
  return ids.length > NAMED ? `${shown.join(', ')} and ${ids.length - NAMED} more` : shown.join(', ');
}

function deviceLabel(snapshot: RoundSnapshot, deviceId: string): string {
  const progress = snapshot.devices.get(deviceId) ?? { stage: 'starting' };
  switch (progress.stage) {
    case 'starting':
      return `${deviceId} (not connected yet)`;
    case 'online':
      return `${deviceId} (connected)`;
    case 'selected':
      return `${deviceId} (selected, training or uploading)`;
    case 'answered':
      return `${deviceId} (${progress.outcome})`;
    case 'failed':
      return `${deviceId} (failed: ${progress.message})`;
  }
}

/** One line saying what the round waits for, naming the devices it waits on. */
export function describeWait(snapshot: RoundSnapshot): string {
  const { round, roundId, state, scheduled } = snapshot;
  if (roundId === null || state === null) return `waiting for the coordinator to open round ${round}`;
  switch (state) {
    case 'SELECTING': {
      if (scheduled.length === 0)
        return `round ${roundId} SELECTING: no device is online in this round (offline round); the coordinator keeps it open until a device checks in`;
      const missing = scheduled.filter((id) => !snapshot.checkedIn.has(id));
      if (missing.length === 0)
        return `round ${roundId} SELECTING: all ${scheduled.length} scheduled devices checked in; waiting for the coordinator to select`;
      return (
        `round ${roundId} SELECTING: ${scheduled.length - missing.length} of ${scheduled.length} scheduled devices checked in; ` +
        `waiting for ${nameSome(missing, (id) => deviceLabel(snapshot, id))}`
      );
    }
    case 'CONFIGURING':
      return `round ${roundId} CONFIGURING: waiting for the coordinator to send the round plan`;
    case 'REPORTING': {
      const answered = snapshot.accepted + snapshot.skipped;
      const pending = scheduled.filter((id) => {
        const progress = snapshot.devices.get(id);
        return progress?.stage === 'selected';
      });
      const who = pending.length > 0 ? `: ${nameSome(pending, (id) => deviceLabel(snapshot, id))}` : '';
      return (
        `round ${roundId} REPORTING: ${answered} of ${snapshot.selected} selected devices answered ` +
        `(${snapshot.accepted} updates, ${snapshot.skipped} skips); waiting for ${snapshot.selected - answered}${who}`
      );
    }
    case 'AGGREGATING':
      return `round ${roundId} AGGREGATING: waiting for the worker to aggregate, audit and decide (job round:${roundId}:aggregate)`;
    default:
      return `round ${roundId} ${state}`;
  }
}

/** What counts as progress: any change here restarts the stall clock. */
export function progressKey(snapshot: RoundSnapshot): string {
  const stages = [...snapshot.devices.values()].map((p) => p.stage).join(',');
  return [
    snapshot.roundId,
    snapshot.state,
    snapshot.checkedIn.size,
    snapshot.selected,
    snapshot.accepted,
    snapshot.skipped,
    stages,
  ].join('|');
}

/** Thrown when a round makes no progress for the stall timeout; the message says what it waited for. */
export class SimulationStalledError extends Error {
  readonly code = 'SIMULATION_STALLED';

  constructor(
    /** The `describeWait` line at the time of the stall. */
    readonly waitingFor: string,
    /** Ms without progress. */
    readonly stalledMs: number,
  ) {
    super(
      `simulation stalled: no progress for ${Math.round(stalledMs / 1000)} s; ${waitingFor} ` +
        '(raise --stall-timeout if this phase is legitimately slow)',
    );
    this.name = 'SimulationStalledError';
  }
}

/**
 * Tracks progress of one round's snapshots: `observe` returns the stall error once nothing has
 * changed for `stallTimeoutMs`, else null.
 */
export class StallClock {
  private key = '';
  private since: number;

  constructor(
    private readonly stallTimeoutMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.since = now();
  }

  observe(snapshot: RoundSnapshot): SimulationStalledError | null {
    const key = progressKey(snapshot);
    const now = this.now();
    if (key !== this.key) {
      this.key = key;
      this.since = now;
      return null;
    }
    const stalled = now - this.since;
    return stalled >= this.stallTimeoutMs
      ? new SimulationStalledError(describeWait(snapshot), stalled)
      : null;
  }
}
