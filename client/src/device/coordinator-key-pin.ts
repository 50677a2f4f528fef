import type { KeyStore } from '../identity/key-store.js';
import type { DeviceEventReporter } from './device-events.js';
import type { DeviceLogger } from './logger.js';

/**
 * The coordinator's public key (base64) as the device trusts it: given in configuration, kept in
 * the key store, or else pinned from the first challenge (trust on first use) and saved there.
 */
export class CoordinatorKeyPin {
  private key: string | null;

  constructor(
    private readonly options: {
      /** Pinned from configuration; null to use the key store or the first challenge. */
      configured: string | null;
      keyStore?: KeyStore;
      logger: DeviceLogger;
      events: DeviceEventReporter;
    },
  ) {
    this.key = options.configured;
  }

  /** The pinned key, or null before the first challenge. */
  get current(): string | null {
    return this.key;
  }

  /** Takes the key kept in the key store when none was configured. */
  async load(): Promise<void> {
    if (this.key === null && this.options.keyStore)
      this.key = await this.options.keyStore.loadCoordinatorKey();
  }

  /** True when `offered` is the pinned key, or pins and saves it when none is pinned yet. */
  async accept(offered: string): Promise<boolean> {
    if (this.key !== null) return this.key === offered;
    this.key = offered;
    await this.options.keyStore?.saveCoordinatorKey(offered);
    this.options.logger.info({ coordinatorKey: offered }, 'pinned the coordinator key on first use');
    this.options.events.emit((e) => e.onCoordinatorKeyPinned?.(offered));
    return true;
  }
}
