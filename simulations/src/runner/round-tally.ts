import type { HostEvent } from './host-messages.js';
import type { DeviceProgress } from './round-wait.js';

/** Refusals and skips of the round in progress, and how far each scheduled device got. */
export class RoundEventTally {
  refused: Record<string, number> = {};
  /** Progress of the current round's scheduled devices (what the round watch names). */
  progress = new Map<string, DeviceProgress>();

  startRound(scheduled: readonly string[]): void {
    this.refused = {};
    this.progress = new Map(scheduled.map((id) => [id, { stage: 'starting' } as const]));
  }

  record(event: HostEvent): void {
    if (event.type === 'refused') this.count(event.code);
    else if (event.type === 'skipped') this.count(event.reason);
    const current = 'deviceId' in event ? this.progress.get(event.deviceId) : undefined;
    if (current === undefined || !('deviceId' in event)) return;
    const { deviceId } = event;
    if (event.type === 'online' && current.stage === 'starting')
      this.progress.set(deviceId, { stage: 'online' });
    else if (event.type === 'selected') this.progress.set(deviceId, { stage: 'selected' });
    else if (event.type === 'accepted')
      this.progress.set(deviceId, { stage: 'answered', outcome: 'accepted' });
    else if (event.type === 'refused')
      this.progress.set(deviceId, { stage: 'answered', outcome: `refused ${event.code}` });
    else if (event.type === 'skipped')
      this.progress.set(deviceId, { stage: 'answered', outcome: `skipped: ${event.reason}` });
    else if (event.type === 'error' && event.fatal)
      this.progress.set(deviceId, { stage: 'failed', message: event.message });
  }

  private count(reason: string): void {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1;
  }
}
