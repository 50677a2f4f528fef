import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '@flotilla/coordinator/shared';
import type { HostEvent, HostMessage, HostSetup, RoundBytes } from './host-messages.js';

/** Default ms a host may take to start (load tfjs, build its data) before `start` fails. */
export const HOST_START_TIMEOUT_MS = 180_000;

/**
 * A device host's young generation, MB: 4 MB semi-spaces, 8 MB resident, where Node's default
 * grows to 32 MB per thread. A host's garbage is short-lived (a round's sockets, requests and
 * tensor wrappers; the training data and weights live in shared and WebAssembly memory), and a
 * smaller young generation collects it, and the buffers it holds, sooner. The demo task's peak
 * fell by about 40 MB with no change in round time (docs/benchmarks.md, simulation memory).
 */
export const HOST_YOUNG_GENERATION_MB = 8;

/**
 * The simulated fleet: devices spread over worker threads (one tfjs instance each) so that all
 * cores train. Events from every host arrive on one callback.
 */
export class SimulatedFleet {
  private readonly hosts: Worker[];
  private readonly roundEnds: Array<(bytes: RoundBytes) => void> = [];
  private readonly stops: Array<() => void> = [];

  private constructor(hosts: Worker[]) {
    this.hosts = hosts;
  }

  /**
   * Starts one host per setup and resolves once every host is ready; `onReady` is told of each
   * (setup progress). A host that fails or does not come up within `timeoutMs` fails the start
   * with a message that says which.
   */
  static async start(
    setups: HostSetup[],
    onEvent: (event: HostEvent) => void,
    options: { onReady?: (ready: number) => void; timeoutMs?: number } = {},
  ): Promise<SimulatedFleet> {
    const hosts = setups.map((setup) =>
      startTsWorker(new URL('./device-host-entry.ts', import.meta.url), setup, {
        resourceLimits: { maxYoungGenerationSizeMb: HOST_YOUNG_GENERATION_MB },
      }),
    );
    const fleet = new SimulatedFleet(hosts);
    const timeoutMs = options.timeoutMs ?? HOST_START_TIMEOUT_MS;
    let ready = 0;
    let timer: NodeJS.Timeout | undefined;
    const started = Promise.all(
      hosts.map(
        (host, index) =>
          new Promise<void>((resolve, reject) => {
            host.on('error', (error) =>
              reject(new Error(`device host ${index + 1} of ${hosts.length} failed: ${error.message}`)),
            );
            host.on('message', (event: HostEvent) => {
              if (event.type === 'ready') {
                ready += 1;
                options.onReady?.(ready);
                resolve();
              } else if (event.type === 'round-ended') fleet.roundEnds.shift()?.(event.bytes);
              else if (event.type === 'stopped') fleet.stops.shift()?.();
              else onEvent(event);
            });
          }),
      ),
    );
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`device hosts did not start within ${timeoutMs} ms: ${ready} of ${hosts.length} ready`),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([started, timeout]);
    } catch (error) {
      await Promise.all(hosts.map((host) => host.terminate()));
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return fleet;
  }

  announce(message: HostMessage): void {
    for (const host of this.hosts) host.postMessage(message);
  }

  /**
   * Ends the round on every host: devices still online go dormant. Resolves with the bytes the
   * round's devices sent and received, summed over hosts.
   */
  async endRound(): Promise<RoundBytes> {
    const replies = this.hosts.map(() => new Promise<RoundBytes>((resolve) => this.roundEnds.push(resolve)));
    this.announce({ type: 'end-round' });
    const all = await Promise.all(replies);
    return all.reduce(
      (sum, b) => ({
        up: sum.up + b.up,
        down: sum.down + b.down,
        adapterDown: sum.adapterDown + b.adapterDown,
      }),
      { up: 0, down: 0, adapterDown: 0 },
    );
  }

  /** Sends every device dormant (sockets closed), then ends the threads; at most `graceMs` waiting. */
  async stop(graceMs = 5000): Promise<void> {
    const stopped = Promise.all(
      this.hosts.map(() => new Promise<void>((resolve) => this.stops.push(resolve))),
    );
    this.announce({ type: 'stop' });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([stopped, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    await Promise.all(this.hosts.map((host) => host.terminate()));
  }
}
