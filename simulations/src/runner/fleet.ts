import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '@flotilla/coordinator/shared';
import type { HostEvent, HostMessage, HostSetup } from './host-messages.js';

/**
 * The simulated fleet: devices spread over worker threads (one tfjs instance each) so that all
 * cores train. Events from every host arrive on one callback.
 */
export class SimulatedFleet {
  private readonly hosts: Worker[];
  private readonly byteReplies: Array<(bytes: { up: number; down: number }) => void> = [];

  private constructor(hosts: Worker[]) {
    this.hosts = hosts;
  }

  static async start(setups: HostSetup[], onEvent: (event: HostEvent) => void): Promise<SimulatedFleet> {
    const hosts = setups.map((setup) => startTsWorker(new URL('./device-host.ts', import.meta.url), setup));
    const fleet = new SimulatedFleet(hosts);
    await Promise.all(
      hosts.map(
        (host) =>
          new Promise<void>((resolve, reject) => {
            host.on('error', reject);
            host.on('message', (event: HostEvent) => {
              if (event.type === 'ready') resolve();
              else if (event.type === 'bytes')
                fleet.byteReplies.shift()?.({ up: event.up, down: event.down });
              else onEvent(event);
            });
          }),
      ),
    );
    return fleet;
  }

  announce(message: HostMessage): void {
    for (const host of this.hosts) host.postMessage(message);
  }

  /** Bytes devices sent and received since the last call, summed over hosts. */
  async takeBytes(): Promise<{ up: number; down: number }> {
    const replies = this.hosts.map(
      () => new Promise<{ up: number; down: number }>((resolve) => this.byteReplies.push(resolve)),
    );
    this.announce({ type: 'bytes' });
    const all = await Promise.all(replies);
    return all.reduce((sum, b) => ({ up: sum.up + b.up, down: sum.down + b.down }), { up: 0, down: 0 });
  }

  async stop(): Promise<void> {
    this.announce({ type: 'stop' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await Promise.all(this.hosts.map((host) => host.terminate()));
  }
}
