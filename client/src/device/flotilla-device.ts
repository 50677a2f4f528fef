import type { Socket } from 'socket.io-client';
import {
  AdapterPromotedSchema,
  AuthChallengeSchema,
  FlotillaError,
  NotSelectedSchema,
  PROTOCOL_VERSION,
  RoundClosedSchema,
  RoundPlanSchema,
  SIGNING_DOMAINS,
  WireErrorSchema,
  signPayload,
  type AuthResult,
  type Eligibility,
  type LogLeaf,
  type RoundPlan,
} from '@flotilla/protocol';
import { AdapterStore } from '../cache/adapter-store.js';
import { MemoryBlobCache, type BlobCache } from '../cache/blob-cache.js';
import { DeviceArtifacts } from './artifacts.js';
import { DeviceEventReporter } from './device-events.js';
import { AdapterSync } from './adapter-sync.js';
import { DeviceTimers } from './device-timers.js';
import { FailoverSocket, coordinatorUrls } from './failover-socket.js';
import { CoordinatorHttp } from './http-client.js';
import { fetchVerifiedTask, preflightTask } from './preflight.js';
import { submitUntilAnswered } from './submit-update.js';
import { silentLogger, type DeviceLogger } from './logger.js';
import { DEFAULT_BUDGET, DEFAULT_ELIGIBILITY, type FlotillaDeviceOptions } from './options.js';
import { runRound, trainedEvent, type PendingUpdate } from './round.js';
import { AckLostError, callWithAck, type AckEmitter } from './socket-call.js';
import { checkInclusion } from './inclusion-check.js';

/** Connection refusals that retrying cannot fix. */
const FATAL_CONNECT_CODES = new Set(['UNKNOWN_DEVICE', 'REVOKED_DEVICE', 'VERSION_MISMATCH', 'UNAUTHORIZED']);

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
  private link: FailoverSocket | null = null;
  private session: AuthResult | null = null;
  private coordinatorKey: string | null;
  private artifacts: DeviceArtifacts | null = null;
  private http: CoordinatorHttp | null = null;
  /** The start-time task and data check (`preflightTask`), run once after the first authentication. */
  private preflight: Promise<void> | null = null;
  private store: AdapterStore | null = null;
  private phase: 'idle' | 'waiting' | 'busy' = 'idle';
  /** Counts check-ins, so that a stale plan-wait timer does not act on a later check-in. */
  private checkInSeq = 0;
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
    this.coordinatorKey = options.coordinatorKey ?? null;
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
    const { options } = this;
    if (this.coordinatorKey === null && options.keyStore)
      this.coordinatorKey = await options.keyStore.loadCoordinatorKey();
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
      coordinatorKey: () => this.coordinatorKey,
      computeClass: () => this.computeClass,
      fetchTask: () => fetchVerifiedTask(http, options.taskId, this.coordinatorKey),
      logger: this.logger,
    });
    const firstAuth = this.timers.untilSession(null);
    this.link = new FailoverSocket({
      urls,
      socketOptions: {
        auth: { deviceId: options.deviceId, protocolVersion: PROTOCOL_VERSION },
        ...(options.transports ? { transports: options.transports } : {}),
        reconnectionDelay: options.reconnectDelayMs ?? 1000,
        reconnectionDelayMax: Math.max(5000, options.reconnectDelayMs ?? 1000),
      },
      ...(options.failoverAfter !== undefined ? { failoverAfter: options.failoverAfter } : {}),
      reconnectDelayMs: options.reconnectDelayMs ?? 1000,
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
    // Which transport carries the session, and when it is upgraded: the first thing to check
    // when a proxy on the way refuses WebSocket or long-polling.
    socket.io.on('open', () => {
      const { engine } = socket.io;
      this.logger.info({ transport: engine.transport.name }, 'connected');
      engine.on('upgrade', (transport: { name: string }) =>
        this.logger.info({ transport: transport.name }, 'transport upgraded'),
      );
    });
    socket.on('auth:challenge', (payload: unknown) => void this.answerChallenge(payload));
    socket.on('round:plan', (payload: unknown) => this.onPlan(payload, http));
    socket.on('round:not-selected', (payload: unknown) => {
      const parsed = NotSelectedSchema.safeParse(payload);
      if (!parsed.success || parsed.data.taskId !== this.options.taskId || this.phase !== 'waiting') return;
      this.phase = 'idle';
      this.scheduleCheckIn(parsed.data.retryAfterMs);
    });
    socket.on('round:closed', (payload: unknown) => {
      const parsed = RoundClosedSchema.safeParse(payload);
      if (!parsed.success) return;
      this.logger.debug({ ...parsed.data }, 'round closed');
      // Waiting devices wait in a round still selecting: abandoned there, it will never send
      // them a plan or a not-selected. Check in with the next round instead of after planWaitMs.
      if (
        parsed.data.taskId === this.options.taskId &&
        parsed.data.state === 'ABANDONED' &&
        this.phase === 'waiting'
      ) {
        this.phase = 'idle';
        this.scheduleCheckIn(this.jittered(this.options.reconnectDelayMs ?? 1000));
      }
    });
    socket.on('adapter:promoted', (payload: unknown) => {
      const parsed = AdapterPromotedSchema.safeParse(payload);
      if (!parsed.success || parsed.data.taskId !== this.options.taskId) return;
      if (this.sync.promoted(parsed.data.version) && this.phase !== 'busy') void this.sync.run();
    });
    socket.on('error', (payload: unknown) => {
      const parsed = WireErrorSchema.safeParse(payload);
      if (parsed.success) this.logger.warn({ ...parsed.data }, 'coordinator reported an error');
    });
    socket.on('disconnect', (reason) => {
      this.session = null;
      this.sync.needed = true;
      if (this.phase === 'waiting') this.phase = 'idle';
      this.logger.info({ reason }, 'disconnected');
    });
    socket.on('connect_error', (error: Error & { data?: unknown }) => {
      const wire = WireErrorSchema.safeParse(error.data);
      if (wire.success && FATAL_CONNECT_CODES.has(wire.data.code)) {
        this.fail(
          new FlotillaError('UNAUTHORIZED', `connection refused: ${wire.data.code}: ${wire.data.message}`),
        );
        return;
      }
      this.logger.debug({ message: error.message }, 'connection attempt failed');
    });
  }

  private async answerChallenge(payload: unknown): Promise<void> {
    const socket = this.link?.socket;
    const challenge = AuthChallengeSchema.safeParse(payload);
    if (!socket || !challenge.success) return;
    const offered = challenge.data.coordinatorKey;
    if (this.coordinatorKey === null) {
      this.coordinatorKey = offered;
      await this.options.keyStore?.saveCoordinatorKey(offered);
      this.logger.info({ coordinatorKey: offered }, 'pinned the coordinator key on first use');
      this.events.emit((e) => e.onCoordinatorKeyPinned?.(offered));
    } else if (this.coordinatorKey !== offered) {
      this.fail(
        new FlotillaError(
          'BAD_SIGNATURE',
          'the coordinator key differs from the pinned key: refusing to continue',
        ),
      );
      return;
    }
    const signature = signPayload(
      SIGNING_DOMAINS.authChallenge,
      { deviceId: this.options.deviceId, nonce: challenge.data.nonce, coordinatorKey: offered },
      this.options.keys.secretKey,
    );
    try {
      this.session = await callWithAck(
        socket as AckEmitter,
        'auth:response',
        { signature },
        this.ackTimeout(),
      );
    } catch (error) {
      // A refused signature means the enrolled key is not ours: retrying cannot help.
      if (FlotillaError.is(error, 'BAD_SIGNATURE')) this.fail(error);
      else this.events.error(error, false);
      return;
    }
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
      coordinatorKey: this.coordinatorKey,
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
    if (this.sync.needed && this.phase !== 'busy') await this.sync.run();
    // While busy, the round in progress resumes by itself (its submit loop waits for this session).
    if (this.phase === 'idle') await this.checkIn();
  }

  private async checkIn(): Promise<void> {
    const socket = this.link?.socket;
    if (!socket || !this.session || this.stopReason || this.phase !== 'idle') return;
    this.phase = 'waiting';
    const seq = ++this.checkInSeq;
    try {
      const result = await callWithAck(
        socket as AckEmitter,
        'checkin',
        {
          taskId: this.options.taskId,
          eligibility: await this.eligibility(),
          budget: this.options.budget ?? DEFAULT_BUDGET,
          adapterVersion: this.adapterVersion,
        },
        this.ackTimeout(),
      );
      if (result.status === 'retry' && result.reason === 'task-stopped') {
        this.logger.info({ taskId: this.options.taskId }, 'the task runs no more rounds; stopping');
        this.stop('task-stopped');
      } else if (result.status === 'retry') {
        this.phase = 'idle';
        this.logger.debug({ reason: result.reason, retryAfterMs: result.retryAfterMs }, 'check-in deferred');
        this.scheduleCheckIn(result.retryAfterMs);
      } else {
        this.schedule(() => {
          if (this.phase === 'waiting' && this.checkInSeq === seq) {
            this.phase = 'idle';
            void this.checkIn();
          }
        }, this.options.planWaitMs ?? 120_000);
      }
    } catch (error) {
      if (this.phase === 'waiting') this.phase = 'idle';
      if (error instanceof AckLostError) {
        // After a disconnect, re-authentication checks in again. An ack that timed out on a live
        // connection has nobody to do that: without a retry the device would sit idle for good.
        if (socket.connected) {
          this.events.error(error, false);
          this.scheduleCheckIn(this.jittered(this.options.reconnectDelayMs ?? 1000));
        }
        return;
      }
      this.events.error(error, false);
      this.scheduleCheckIn(this.options.reconnectDelayMs ?? 1000);
    }
  }

  private onPlan(payload: unknown, http: CoordinatorHttp): void {
    const parsed = RoundPlanSchema.safeParse(payload);
    if (!parsed.success) {
      this.logger.warn({ issue: parsed.error.issues[0]?.message }, 'ignored a malformed round plan');
      return;
    }
    const plan = parsed.data;
    if (plan.taskId !== this.options.taskId) return;
    if (this.phase === 'busy') {
      this.logger.debug({ roundId: plan.roundId }, 'plan ignored: already working on a round');
      return;
    }
    void this.train(plan, http);
  }

  private async train(plan: RoundPlan, http: CoordinatorHttp): Promise<void> {
    const artifacts = this.artifacts;
    if (!artifacts) return;
    this.phase = 'busy';
    this.events.emit((e) => e.onRound?.(plan));
    const outcome = await runRound({
      plan,
      options: this.options,
      artifacts,
      http,
      logger: this.logger,
      signal: this.controller.signal,
    });
    if (this.stopReason) {
      // Stopped while training: nothing of this round is sent, not even a skip.
      this.logger.info({ roundId: plan.roundId }, 'stopped during the round; nothing sent');
      return;
    }
    this.events.emit((e) => e.onTrained?.(trainedEvent(plan, outcome)));
    if (outcome.kind === 'skip') {
      this.events.emit((e) => e.onSkip?.({ plan, reason: outcome.skip.reason, detail: outcome.skip.detail }));
      await this.whenAuthenticated(plan.deadline);
      const socket = this.link?.socket;
      if (socket && this.session)
        await callWithAck(socket as AckEmitter, 'update:skip', outcome.skip, this.ackTimeout()).catch(
          (error: unknown) => this.events.error(error, false),
        );
      this.finishRound();
      return;
    }
    await this.submit(outcome.pending);
  }

  /** Uploads (unless already done) and submits the pending update; keeps it pending on a lost ack. */
  private async submit(pending: PendingUpdate): Promise<void> {
    const { plan } = pending;
    const result = await submitUntilAnswered(pending, {
      connection: async (deadline) => {
        await this.whenAuthenticated(deadline);
        const socket = this.link?.socket;
        return socket && this.session ? socket : null;
      },
      isStopped: () => this.stopReason !== null,
      ackTimeoutMs: this.ackTimeout(),
      retryDelayMs: this.options.reconnectDelayMs ?? 1000,
      signal: this.controller.signal,
    });
    if (result.kind === 'stopped') {
      this.logger.info({ roundId: plan.roundId }, 'stopped before the coordinator answered the update');
      return;
    }
    if (result.kind === 'accepted') {
      this.events.emit((e) =>
        e.onUpdateAccepted?.({ plan, receipt: result.receipt, duplicate: result.duplicate }),
      );
      const leaf = result.receipt?.logLeaf;
      if (leaf && this.options.checkInclusion !== false)
        void this.checkInclusion(leaf, plan, pending.submission.metadata.blobDigest);
    } else {
      this.logger.warn(
        { roundId: plan.roundId, code: result.code, message: result.message },
        'update refused',
      );
      this.events.emit((e) => e.onUpdateRefused?.({ plan, code: result.code, message: result.message }));
    }
    this.finishRound();
  }

  /** Checks in the background that the round log holds the accepted update, and reports it. */
  private async checkInclusion(leaf: LogLeaf, plan: RoundPlan, blobDigest: string): Promise<void> {
    const outcome = await checkInclusion(
      leaf,
      { plan, blobDigest },
      {
        socket: () => (this.session ? ((this.link?.socket as AckEmitter | undefined) ?? null) : null),
        coordinatorKey: () => this.coordinatorKey,
        ackTimeoutMs: this.ackTimeout(),
        signal: this.controller.signal,
      },
    );
    if (outcome === null) return;
    if (!outcome.ok)
      this.events.error(
        new FlotillaError(
          'BAD_SIGNATURE',
          `the round log does not prove update ${plan.roundId} was counted: ${outcome.reason}`,
        ),
        false,
      );
    else
      this.logger.info(
        { roundId: plan.roundId, treeSize: outcome.head.treeHead.treeSize },
        'inclusion verified',
      );
    this.events.emit((e) => e.onInclusionChecked?.({ plan, ...outcome }));
  }

  private finishRound(): void {
    this.phase = 'idle';
    this.roundsDone++;
    if (this.options.maxRounds !== undefined && this.roundsDone >= this.options.maxRounds) {
      this.stop('max-rounds');
      return;
    }
    if (this.sync.needed) void this.sync.run().then(() => this.checkIn());
    else void this.checkIn();
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

  private scheduleCheckIn(delayMs: number): void {
    this.schedule(() => void this.checkIn(), delayMs);
  }

  private schedule(action: () => void, delayMs: number): void {
    if (!this.stopReason) this.timers.schedule(action, delayMs);
  }

  /** `ms` spread over [0.5, 1.5)·ms, so that a fleet told the same thing does not act in lockstep. */
  private jittered(ms: number): number {
    return Math.round(ms * (0.5 + Math.random()));
  }

  private ackTimeout(): number {
    return this.options.ackTimeoutMs ?? 30_000;
  }

  private fail(error: Error): void {
    this.events.error(error, true);
    this.stop('fatal');
  }
}
