import { FlotillaError } from '@flotilla/protocol';
import type { DeviceLogger } from './logger.js';
import type { FlotillaDeviceEvents } from './options.js';

/**
 * Delivers a device's events to its owner's callbacks. A callback that throws is logged and
 * never breaks the device; errors are logged with their code before the owner hears of them.
 */
export class DeviceEventReporter {
  constructor(
    private readonly logger: DeviceLogger,
    private readonly events: FlotillaDeviceEvents,
  ) {}

  /** Runs one owner callback, isolating the device from anything it throws. */
  emit(call: (events: FlotillaDeviceEvents) => void): void {
    try {
      call(this.events);
    } catch (error) {
      this.logger.error(
        { message: error instanceof Error ? error.message : String(error) },
        'event callback threw',
      );
    }
  }

  /** Logs an error and passes it to `onError`; `fatal` errors are followed by a stop. */
  error(error: unknown, fatal: boolean): void {
    const err = error instanceof Error ? error : new Error(String(error));
    this.logger.error(
      { code: FlotillaError.is(err) ? err.code : undefined, message: err.message, fatal },
      'device error',
    );
    this.emit((events) => events.onError?.(err, fatal));
  }
}
