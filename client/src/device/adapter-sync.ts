import type { DeviceArtifacts } from './artifacts.js';
import type { DeviceEventReporter } from './device-events.js';

export interface AdapterSyncOptions {
  /** The device's artifacts; null before start(). */
  artifacts: () => DeviceArtifacts | null;
  /** The adapter version in service. */
  version: () => number;
  /** Whether a session exists (catch-ups need one) and whether the device stopped. */
  online: () => boolean;
  stopped: () => boolean;
  events: DeviceEventReporter;
}

/**
 * The device's adapter catch-ups, one at a time. A catch-up asked for while one runs joins it; it
 * then runs once more only if a newer version was announced (`promoted`) than it reached, or if
 * it failed. So a promotion heard during the catch-up that fetches that very version — the
 * broadcast and the HTTP catch-up race — costs no second download.
 */
export class AdapterSync {
  /** True until a catch-up completes; set again by a promotion or a reconnection. */
  needed = true;
  private running: Promise<void> | null = null;
  private again = false;
  /** Newest version announced by `adapter:promoted`. */
  private announced = 0;

  constructor(private readonly options: AdapterSyncOptions) {}

  /** A promotion of `version` was announced; true when it is newer than the adapter in service. */
  promoted(version: number): boolean {
    if (version <= this.options.version()) return false;
    this.announced = Math.max(this.announced, version);
    this.needed = true;
    return true;
  }

  /** Catches up (or joins the catch-up in progress). Never throws: failures go to the events. */
  run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.once();
        } while (
          this.again &&
          !this.options.stopped() &&
          (this.options.version() < this.announced || this.needed)
        );
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  private async once(): Promise<void> {
    const artifacts = this.options.artifacts();
    if (!artifacts || !this.options.online()) return;
    const before = this.options.version();
    const { events } = this.options;
    try {
      const result = await artifacts.syncLatest();
      this.needed = false;
      if (result.status === 'updated' && result.route)
        events.emit((e) =>
          e.onAdapterChanged?.({
            version: result.adapter.version,
            previousVersion: before,
            route: result.route ?? 'full',
          }),
        );
      if (result.status === 'refused')
        events.emit((e) => e.onAdapterRefused?.({ reason: result.reason ?? '' }));
    } catch (error) {
      events.error(error, false);
    }
  }
}
