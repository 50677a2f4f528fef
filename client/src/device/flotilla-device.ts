import type { Socket } from 'socket.io-client';
import {
  FlotillaError,
  PROTOCOL_VERSION,
  type AuthChallenge,
  type AuthResult,
  type Eligibility,
  type NoticeHandlers,
  type RoundPlan,
} from '@flotilla/protocol';
import { AdapterStore } from '../cache/adapter-store.js';
import { MemoryBlobCache, type BlobCache } from '../cache/blob-cache.js';
import { answerChallenge } from './answer-challenge.js';
import { DeviceArtifacts } from './artifacts.js';
import { CheckInLoop } from './check-in-loop.js';
import { fatalRefusal, logTransports } from './connection-events.js';
import { CoordinatorKeyPin } from './coordinator-key-pin.js';
import { DeviceEventReporter } from './device-events.js';
import { AdapterSync } from './adapter-sync.js';
import { DeviceTimers } from './device-timers.js';
import { FailoverSocket, coordinatorUrls } from './failover-socket.js';
import { CoordinatorHttp } from './http-client.js';
import { listenToNotices } from './notice-listeners.js';
import { fetchVerifiedTask, preflightTask } from './preflight.js';
import { silentLogger, type DeviceLogger } from './logger.js';
import { DEFAULT_BUDGET, DEFAULT_ELIGIBILITY, type FlotillaDeviceOptions } from './options.js';
import { takePartInRound } from './round-participation.js';
import type { AckEmitter } from './socket-call.js';

/**
 * Why a device stopped: `stop()` was called, it ran its `maxRounds`, a fatal refusal, or the
 * coordinator answered that the task runs no more rounds (stopped or archived).
 */
export type DeviceStopReason = 'stopped' | 'max-rounds' | 'fatal' | 'task-stopped';

/**
 * A device taking part in a task's rounds. `start()` connects, authenticates (answering the
 * coordinator's challenge, pinning its key) and loops: check in, wait for a plan, train with the
 * injected trainer, clip, upload, sign, submit; it catches its adapter up after every absence and
 * on every `adapter:promoted`. See docs/protocol.md for the wire behaviour.
 *
 * @example
 * ```ts
 * const store = new FileKeyStore({ dir: '.flotilla/device' });
 * const keys = await loadOrCreateDeviceKeys(store);
 * await enrollDevice({ url, token, deviceId: 'phone-17', keys });
 * const device = new FlotillaDevice({
 *   url, deviceId: 'phone-17', keys, taskId: 'mnist-lora', keyStore: store,
 *   cacheDir: '.flotilla/cache',
 *   trainer: new TfjsTrainer({ data: { train, holdout } }),
 *   onUpdateAccepted: ({ receipt }) => console.log('accepted, norm', receipt?.norm),
 * });
 * await device.start();
 * ```
 */
export class FlotillaDevice {
  private readonly options: FlotillaDeviceOptions;
  private readonly logger: DeviceLogger;
  private readonly events: DeviceEventReporter;
  private readonly controller = new AbortController();
  private readonly timers = new DeviceTimers();
  private readonly pin: CoordinatorKeyPin;
  private readonly checkIns: CheckInLoop;
  private link: FailoverSocket | null = null;
  private session: AuthResult | null = null;
  private artifacts: DeviceArtifacts | null = null;
  private http: CoordinatorHttp | null = null;
  /** The start-time task and data check (`preflightTask`), run once after the first authentication. */
  private preflight: Promise<void> | null = null;
  private store: AdapterStore | null = null;
  /** Adapter catch-ups, one at a time (a promotion heard during one does not start another). */
  private readonly sync: AdapterSync;
  /** Compute class of the latest eligibility report: picks the precision of adapter downloads. */
  private computeClass: Eligibility['computeClass'];
  private roundsDone = 0;
  private stopReason: DeviceStopReason | null = null;
  private resolveStopped: (reason: DeviceStopReason) => void = () => undefined;
  /** Resolves once the device has stopped, with the reason. */
  readonly stopped: Promise<DeviceStopReason>;

  constructor(options: FlotillaDeviceOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.events = new DeviceEventReporter(this.logger, options);
    this.sync = new AdapterSync({
      artifacts: () => this.artifacts,
      version: () => this.adapterVersion,
      online: () => this.session !== null,
      stopped: () => this.stopReason !== null,
      events: this.events,
    });
    this.pin = new CoordinatorKeyPin({
      configured: options.coordinatorKey ?? null,
      ...(options.keyStore ? { keyStore: options.keyStore } : {}),
      logger: this.logger,
      events: this.events,
    });
    this.checkIns = new CheckInLoop({
      taskId: options.taskId,
      budget: options.budget ?? DEFAULT_BUDGET,
      planWaitMs: options.planWaitMs ?? 120_000,
      retryDelayMs: this.retryDelayMs(),
      ackTimeoutMs: this.ackTimeout(),
      connection: () => this.connection(),
      eligibility: () => this.eligibility(),
      adapterVersion: () => this.adapterVersion,
      schedule: (action, delayMs) => this.schedule(action, delayMs),
      onTaskStopped: () => this.stop('task-stopped'),
      events: this.events,
      logger: this.logger,
    });
    const eligibility = options.eligibility;
    this.computeClass =
      eligibility !== undefined && typeof eligibility !== 'function'
        ? eligibility.computeClass
        : DEFAULT_ELIGIBILITY.computeClass;
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
    options.signal?.addEventListener('abort', () => this.stop(), { once: true });
  }

  /** The adapter version in service (0 before any). */
  get adapterVersion(): number {
    return this.store?.current.version ?? 0;
  }

  /** The adapter store (current and previous adapter), available after `start()`. */
  get adapters(): AdapterStore | null {
    return this.store;
  }

  /** The coordinator the device is connected to, or tries (one of `url`); null before `start()`. */
  get coordinatorUrl(): string | null {
    return this.link?.url ?? null;
  }

  /** Number of rounds finished (accepted, refused or skipped). */
  get rounds(): number {
    return this.roundsDone;
  }

  /**
   * Connects; resolves after the first successful authentication and, when the trainer has a
   * `prepare` step (the `TfjsTrainer` does), after checking the task and that the local data fits
   * its base model. Rejects on a fatal refusal or a failed check (e.g. `BAD_REQUEST` naming a
   * `featureShape` the model does not take, `NOT_FOUND` for an unknown task).
   */
  async start(): Promise<void> {
    if (this.link) throw new FlotillaError('BAD_REQUEST', 'device already started');
    const urls = coordinatorUrls(this.options.url);
    const { options, pin } = this;
    await pin.load();
    const cache = await this.openCache();
    this.store = new AdapterStore({ cache, taskId: options.taskId });
    await this.store.load();
    const http = new CoordinatorHttp({
      url: () => this.link?.url ?? urls[0] ?? '',
      sessionToken: () => this.session?.sessionToken ?? null,
      signal: this.controller.signal,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.retry ? { retry: options.retry } : {}),
    });
    this.http = http;
    this.artifacts = new DeviceArtifacts({
      taskId: options.taskId,
      cache,
      store: this.store,
      fetcher: http,
      coordinatorKey: () => pin.current,
      computeClass: () => this.computeClass,
      fetchTask: () => fetchVerifiedTask(http, options.taskId, pin.current),
      logger: this.logger,
    });
    const firstAuth = this.timers.untilSession(null);
    this.link = new FailoverSocket({
      urls,
      socketOptions: {
        auth: { deviceId: options.deviceId, protocolVersion: PROTOCOL_VERSION },
        ...(options.transports ? { transports: options.transports } : {}),
        reconnectionDelay: this.retryDelayMs(),
        reconnectionDelayMax: Math.max(5000, this.retryDelayMs()),
      },
      ...(options.failoverAfter !== undefined ? { failoverAfter: options.failoverAfter } : {}),
      reconnectDelayMs: this.retryDelayMs(),
      attach: (socket) => this.attach(socket, http),
      stopped: () => this.stopReason !== null,
      schedule: (action, delayMs) => this.schedule(action, delayMs),
      onFailover: (url) => this.events.emit((e) => e.onCoordinatorChanged?.({ url })),
      logger: this.logger,
    });
    await firstAuth;
    if (!this.session)
      throw new FlotillaError(
        'UNAUTHORIZED',
        `device stopped before authenticating (${this.stopReason ?? ''})`,
      );
    await this.prepared();
  }

  /** Disconnects and aborts any training in progress. Idempotent. */
  stop(reason: DeviceStopReason = 'stopped'): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    this.controller.abort(new FlotillaError('ROUND_CLOSED', `device stopped (${reason})`));
    this.timers.close();
    this.link?.disconnect();
    this.resolveStopped(reason);
  }

  private attach(socket: Socket, http: CoordinatorHttp): void {
    logTransports(socket, this.logger);
    listenToNotices(socket, this.noticeHandlers(http), (notice, issue) =>
      this.logger.warn({ notice, issue }, 'ignored a malformed notice'),
    );
    socket.on('disconnect', (reason) => {
      this.session = null;
      this.sync.needed = true;
      this.checkIns.disconnected();
      this.logger.info({ reason }, 'disconnected');
    });
    socket.on('connect_error', (error: Error & { data?: unknown }) => {
      const fatal = fatalRefusal(error);
      if (fatal) this.fail(fatal);
      else this.logger.debug({ message: error.message }, 'connection attempt failed');
    });
  }

  /** What the device does on each notice of protocol's table; a notice without a handler does not compile. */
  private noticeHandlers(http: CoordinatorHttp): NoticeHandlers {
    const { taskId } = this.options;
    return {
      'auth:challenge': (challenge) => void this.authenticate(challenge),
      'round:plan': (plan) => {
        if (plan.taskId !== taskId) return;
        if (this.checkIns.busy) {
          this.logger.debug({ roundId: plan.roundId }, 'plan ignored: already working on a round');
          return;
        }
        void this.takePart(plan, http);
      },
      'round:not-selected': (notice) => {
        if (notice.taskId === taskId) this.checkIns.notSelected(notice.retryAfterMs);
      },
      'round:closed': (closed) => {
        this.logger.debug({ ...closed }, 'round closed');
        if (closed.taskId === taskId && closed.state === 'ABANDONED') this.checkIns.roundAbandoned();
      },
      'adapter:promoted': (promoted) => {
        if (promoted.taskId !== taskId) return;
        if (this.sync.promoted(promoted.version) && !this.checkIns.busy) void this.sync.run();
      },
      error: (error) => this.logger.warn({ ...error }, 'coordinator reported an error'),
    };
  }

  private async authenticate(challenge: AuthChallenge): Promise<void> {
    const socket = this.link?.socket;
    if (!socket) return;
    const outcome = await answerChallenge(challenge, {
      deviceId: this.options.deviceId,
      keys: this.options.keys,
      pin: this.pin,
      socket,
      ackTimeoutMs: this.ackTimeout(),
    });
    if (outcome.kind === 'fatal') {
      this.fail(outcome.error);
      return;
    }
    if (outcome.kind === 'failed') {
      this.events.error(outcome.error, false);
      return;
    }
    this.session = outcome.session;
    this.logger.info({ deviceId: this.options.deviceId }, 'authenticated');
    this.timers.sessionOpened();
    await this.afterAuthentication();
  }

  /** Runs the start-time check once; a failure stops the device (fatal) and rejects. */
  private prepared(): Promise<void> {
    const { artifacts, http } = this;
    if (!this.options.trainer.prepare || !artifacts || !http) return Promise.resolve();
    this.preflight ??= preflightTask({
      taskId: this.options.taskId,
      http,
      coordinatorKey: this.pin.current,
      artifacts,
      trainer: this.options.trainer,
      logger: this.logger,
    }).then(
      (task) => artifacts.useTask(task),
      (error: unknown) => {
        const failure = error instanceof Error ? error : new Error(String(error));
        this.fail(failure);
        throw failure;
      },
    );
    return this.preflight;
  }

  private async afterAuthentication(): Promise<void> {
    try {
      await this.prepared();
    } catch {
      return; // stopped by the failed check; start() reports it
    }
    if (this.sync.needed && !this.checkIns.busy) await this.sync.run();
    // While busy, the round in progress resumes by itself (its submit loop waits for this session).
    await this.checkIns.checkIn();
  }

  private async takePart(plan: RoundPlan, http: CoordinatorHttp): Promise<void> {
    const artifacts = this.artifacts;
    if (!artifacts) return;
    this.checkIns.roundStarted();
    const ended = await takePartInRound(plan, {
      options: this.options,
      artifacts,
      http,
      logger: this.logger,
      events: this.events,
      signal: this.controller.signal,
      connection: async (deadline) => {
        await this.whenAuthenticated(deadline);
        return this.connection();
      },
      currentSocket: () => this.connection(),
      coordinatorKey: () => this.pin.current,
      isStopped: () => this.stopReason !== null,
      ackTimeoutMs: this.ackTimeout(),
      retryDelayMs: this.retryDelayMs(),
    });
    if (ended === 'finished') this.finishRound();
  }

  private finishRound(): void {
    this.checkIns.roundFinished();
    this.roundsDone++;
    if (this.options.maxRounds !== undefined && this.roundsDone >= this.options.maxRounds) {
      this.stop('max-rounds');
      return;
    }
    if (this.sync.needed) void this.sync.run().then(() => this.checkIns.checkIn());
    else void this.checkIns.checkIn();
  }

  /** The socket while a session is open and the device runs, else null. */
  private connection(): AckEmitter | null {
    const socket = this.link?.socket;
    return socket && this.session && !this.stopReason ? socket : null;
  }

  /** Resolves when a session exists, the deadline passes or the device stops. */
  private whenAuthenticated(deadline: number): Promise<void> {
    if (this.session || this.stopReason) return Promise.resolve();
    return this.timers.untilSession(deadline);
  }

  private async eligibility(): Promise<Eligibility> {
    const e = this.options.eligibility ?? DEFAULT_ELIGIBILITY;
    const current = typeof e === 'function' ? await e() : e;
    this.computeClass = current.computeClass;
    return current;
  }

  private async openCache(): Promise<BlobCache> {
    if (this.options.cache) return this.options.cache;
    if (this.options.cacheDir === undefined) return new MemoryBlobCache();
    // Loaded lazily so that browser bundles never pull in node:fs.
    const { FileBlobCache } = await import('../cache/file-blob-cache.js');
    return new FileBlobCache({ dir: this.options.cacheDir });
  }

  private schedule(action: () => void, delayMs: number): void {
    if (!this.stopReason) this.timers.schedule(action, delayMs);
  }

  private retryDelayMs(): number {
    return this.options.reconnectDelayMs ?? 1000;
  }

  private ackTimeout(): number {
    return this.options.ackTimeoutMs ?? 30_000;
  }

  private fail(error: Error): void {
    this.events.error(error, true);
    this.stop('fatal');
  }
}
