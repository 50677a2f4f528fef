/** Options of the gate in front of update validation (which reads whole delta blobs). */
export interface ValidationGateOptions {
  /**
   * Bytes of delta blobs being validated at once in this process; further validations wait.
   * Default 256 MiB. A single blob larger than this runs alone.
   */
  maxBytes: number;
}

export const DEFAULT_VALIDATION_BYTES = 256 * 1024 ** 2;

interface Waiter {
  bytes: number;
  start: () => void;
}

/**
 * Validating an update reads its whole blob. The gate runs one validation at a time per device
 * (a burst of submissions from one device reads its blob once at a time, not N times at once)
 * and bounds the bytes read by all validations together; callers wait their turn in order.
 */
export class ValidationGate {
  private readonly perDevice = new Map<string, Promise<unknown>>();
  private inUse = 0;
  private readonly queue: Waiter[] = [];

  constructor(private readonly options: ValidationGateOptions = { maxBytes: DEFAULT_VALIDATION_BYTES }) {}

  /**
   * Runs `task` (which reads about `bytes` bytes) once the device's previous one ended and bytes
   * are free. `task` is told whether it waited for either: state it checked before may be stale.
   */
  run<T>(deviceId: string, bytes: number, task: (waited: boolean) => Promise<T>): Promise<T> {
    const previous = this.perDevice.get(deviceId);
    const start = () => this.withBytes(bytes, previous !== undefined, task);
    const run = (previous ?? Promise.resolve()).then(start, start);
    const settled = run.catch(() => undefined);
    this.perDevice.set(deviceId, settled);
    void settled.then(() => {
      if (this.perDevice.get(deviceId) === settled) this.perDevice.delete(deviceId);
    });
    return run;
  }

  private async withBytes<T>(
    bytes: number,
    afterAnother: boolean,
    task: (waited: boolean) => Promise<T>,
  ): Promise<T> {
    const queued = await this.acquire(bytes);
    try {
      return await task(afterAnother || queued);
    } finally {
      this.inUse -= bytes;
      this.wake();
    }
  }

  /** Takes `bytes`; resolves true when it had to queue for them. */
  private acquire(bytes: number): Promise<boolean> {
    if (this.queue.length === 0 && this.fits(bytes)) {
      this.inUse += bytes;
      return Promise.resolve(false);
    }
    return new Promise((start) => this.queue.push({ bytes, start: () => start(true) }));
  }

  private fits(bytes: number): boolean {
    return this.inUse === 0 || this.inUse + bytes <= this.options.maxBytes;
  }

  private wake(): void {
    for (let next = this.queue[0]; next && this.fits(next.bytes); next = this.queue[0]) {
      this.queue.shift();
      this.inUse += next.bytes;
      next.start();
    }
  }
}
