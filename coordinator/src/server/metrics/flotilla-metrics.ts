import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RoundClosed } from '@flotilla/protocol';
import type { CoordinatorRoundEvent } from '../round-events.js';

/** Where gauges read their value at scrape time (each is optional; a missing one reads 0). */
export interface MetricsSources {
  /** Distinct devices with an authenticated socket on this process. */
  connectedDevices?: () => number;
  /** BullMQ job counts of the `aggregate` queue by state (waiting, active, delayed, failed). */
  queueCounts?: () => Promise<Record<string, number>>;
  /** ε spent per task (from the round log's aggregation records). */
  epsilonSpent?: () => Promise<ReadonlyMap<string, number>>;
  /** Server-holdout accuracy of each task's live adapter version (tasks whose worker has a holdout). */
  holdoutAccuracy?: () => Promise<ReadonlyMap<string, number>>;
  /** Lines in the round log's Redis stream, and the lines each registered mirror lacks. */
  roundLogStorage?: () => Promise<{
    streamLines: number;
    mirrors: ReadonlyArray<{ mirrorId: string; behind: number }>;
  }>;
}

export interface FlotillaMetricsOptions {
  /** Registry to register into. Default: a fresh one (so several coordinators in one process do not clash). */
  registry?: Registry;
  /** Also collect Node process metrics (`flotilla_process_*`, `flotilla_nodejs_*`). Default true. */
  processMetrics?: boolean;
  sources?: MetricsSources;
}

/** Queue states reported by `flotilla_aggregate_queue_jobs`. */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;

/**
 * The coordinator's Prometheus metrics (prom-client). Names and meanings are listed in
 * docs/operations.md. Counters are per process: a fleet served by several coordinators sums
 * them in PromQL.
 */
export class FlotillaMetrics {
  readonly registry: Registry;
  private sources: MetricsSources;
  /** Epoch ms at which a round entered AGGREGATING, until its outcome arrives. */
  private readonly closedAt = new Map<string, number>();

  readonly roundsTotal: Counter<'task' | 'outcome'>;
  readonly roundTransitions: Counter<'task' | 'state'>;
  readonly rollbacks: Counter<'task'>;
  readonly updatesAccepted: Counter<'task'>;
  readonly updatesRefused: Counter<'task' | 'reason'>;
  readonly updatesResubmitted: Counter<'task'>;
  readonly updateNormRatio: Histogram<'task'>;
  readonly updateValidations: Counter<'source'>;
  readonly socketConnections: Counter;
  readonly socketDisconnections: Counter;
  readonly connectedDevices: Gauge;
  readonly blobBytesReceived: Counter;
  readonly blobBytesSent: Counter;
  readonly uncaughtErrors: Counter<'kind'>;
  readonly aggregationSeconds: Histogram<'task' | 'outcome'>;
  readonly queueJobs: Gauge<'state'>;
  readonly epsilonSpent: Gauge<'task'>;
  readonly holdoutAccuracy: Gauge<'task'>;
  readonly roundLogStreamLines: Gauge;
  readonly roundLogMirrorLag: Gauge<'mirror'>;

  constructor(options: FlotillaMetricsOptions = {}) {
    const registry = options.registry ?? new Registry();
    this.registry = registry;
    this.sources = options.sources ?? {};
    const registers = [registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'flotilla_' });
    // Arrow functions keep `this`: prom-client calls collect() with the metric as `this`.
    const sources = () => this.sources;

    this.roundsTotal = new Counter({
      name: 'flotilla_rounds_total',
      help: 'Rounds finished, by outcome: committed, rejected (by the worker) or abandoned (quorum/fault).',
      labelNames: ['task', 'outcome'],
      registers,
    });
    this.roundTransitions = new Counter({
      name: 'flotilla_round_transitions_total',
      help: 'Round state changes observed by this coordinator, by the state entered.',
      labelNames: ['task', 'state'],
      registers,
    });
    this.rollbacks = new Counter({
      name: 'flotilla_adapter_rollbacks_total',
      help: "Operator rollbacks: a new adapter version re-promoting an older version's content.",
      labelNames: ['task'],
      registers,
    });
    this.updatesAccepted = new Counter({
      name: 'flotilla_updates_accepted_total',
      help: 'Updates accepted durably into a round.',
      labelNames: ['task'],
      registers,
    });
    this.updatesRefused = new Counter({
      name: 'flotilla_updates_refused_total',
      help: 'Updates refused, by reason (the error code the device received, e.g. NORM_EXCEEDED).',
      labelNames: ['task', 'reason'],
      registers,
    });
    this.updatesResubmitted = new Counter({
      name: 'flotilla_updates_resubmitted_total',
      help: 'Re-submissions of an already accepted update (its ack was lost), answered DUPLICATE_UPDATE: acceptances acknowledged again, not refusals; the update counts once in flotilla_updates_accepted_total.',
      labelNames: ['task'],
      registers,
    });
    this.updateNormRatio = new Histogram({
      name: 'flotilla_update_norm_ratio',
      help: 'L2 norm of each accepted update divided by the clip bound it was checked against.',
      labelNames: ['task'],
      buckets: [0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1, 1.01],
      registers,
    });
    this.updateValidations = new Counter({
      name: 'flotilla_update_validations_total',
      help: 'Update blobs validated at submission, by where the bytes came from: upload (kept in memory since their PUT) or store (read back and hashed again).',
      labelNames: ['source'],
      registers,
    });
    this.socketConnections = new Counter({
      name: 'flotilla_socket_connections_total',
      help: 'socket.io connections admitted by the handshake (before the challenge).',
      registers,
    });
    this.socketDisconnections = new Counter({
      name: 'flotilla_socket_disconnections_total',
      help: 'socket.io connections closed.',
      registers,
    });
    this.connectedDevices = new Gauge({
      name: 'flotilla_connected_devices',
      help: 'Distinct devices with an authenticated socket on this coordinator.',
      registers,
      collect() {
        this.set(sources().connectedDevices?.() ?? 0);
      },
    });
    this.blobBytesReceived = new Counter({
      name: 'flotilla_blob_bytes_received_total',
      help: 'Bytes of blobs stored through PUT /blobs/:sha256 (device deltas, operator uploads).',
      registers,
    });
    this.blobBytesSent = new Counter({
      name: 'flotilla_blob_bytes_sent_total',
      help: 'Bytes of blob bodies served by GET /blobs/:sha256 (full or ranged).',
      registers,
    });
    this.uncaughtErrors = new Counter({
      name: 'flotilla_uncaught_errors_total',
      help: 'Errors that escaped every handler and were caught by the last-resort process guard (a bug: see the error log).',
      labelNames: ['kind'],
      registers,
    });
    this.aggregationSeconds = new Histogram({
      name: 'flotilla_aggregation_duration_seconds',
      help: 'Time from a round closing (AGGREGATING) to the worker outcome reaching this coordinator.',
      labelNames: ['task', 'outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.queueJobs = new Gauge({
      name: 'flotilla_aggregate_queue_jobs',
      help: 'Jobs in the BullMQ aggregate queue, by state (waiting + active + delayed is the queue depth).',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = (await sources().queueCounts?.()) ?? {};
        for (const state of QUEUE_STATES) this.set({ state }, counts[state] ?? 0);
      },
    });
    this.epsilonSpent = new Gauge({
      name: 'flotilla_privacy_epsilon_spent',
      help: 'Differential-privacy ε spent so far per task (at the task δ), from the round log.',
      labelNames: ['task'],
      registers,
      async collect() {
        const spent = (await sources().epsilonSpent?.()) ?? new Map<string, number>();
        for (const [task, epsilon] of spent) this.set({ task }, epsilon);
      },
    });
    this.holdoutAccuracy = new Gauge({
      name: 'flotilla_adapter_holdout_accuracy',
      help: "Accuracy in [0, 1] of each task's live adapter version on the worker's server holdout (from its signed manifest); absent for tasks without a holdout.",
      labelNames: ['task'],
      registers,
      async collect() {
        this.reset();
        const accuracy = (await sources().holdoutAccuracy?.()) ?? new Map<string, number>();
        for (const [task, value] of accuracy) this.set({ task }, value);
      },
    });
    this.roundLogStreamLines = new Gauge({
      name: 'flotilla_round_log_stream_lines',
      help: "Lines (records and tree heads) in the round log's Redis stream: about keepLines once older ones are mirrored and signed; growing past it means a mirror holds them.",
      registers,
      async collect() {
        this.set((await sources().roundLogStorage?.())?.streamLines ?? 0);
      },
    });
    this.roundLogMirrorLag = new Gauge({
      name: 'flotilla_round_log_mirror_lag_lines',
      help: 'Round-log lines each registered JSONL mirror (host:path) lacks; one that keeps growing is a stopped mirror holding lines in Redis (flotilla audit mirrors).',
      labelNames: ['mirror'],
      registers,
      async collect() {
        this.reset();
        for (const { mirrorId, behind } of (await sources().roundLogStorage?.())?.mirrors ?? [])
          this.set({ mirror: mirrorId }, behind);
      },
    });
  }

  /** Sets (or replaces) where gauges read from; the coordinator calls it once it is wired. */
  setSources(sources: MetricsSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  /**
   * Counts a round event the coordinator appends (accepted updates, opened rounds, rollbacks).
   * Refusals are counted one by one by `observeRefusal`: the round log holds only the first of
   * each (round, device, reason) and counts the repeats.
   */
  observeRoundEvent(event: CoordinatorRoundEvent): void {
    const task = event.taskId;
    switch (event.type) {
      case 'update.accepted':
        this.updatesAccepted.inc({ task });
        // A DP round's record withholds the norm (docs/privacy.md): nothing to observe.
        if (event.norm !== null && event.clipBound > 0)
          this.updateNormRatio.observe({ task }, event.norm / event.clipBound);
        return;
      case 'round.opened':
        this.roundTransitions.inc({ task, state: 'REPORTING' });
        return;
      case 'rollback':
        this.rollbacks.inc({ task });
        return;
      default:
        return;
    }
  }

  /** Counts one refused update of a round of `task` (reason: the error code the device got). */
  observeRefusal(task: string, reason: string): void {
    this.updatesRefused.inc({ task, reason });
  }

  /** Counts one accepted update acknowledged again after a lost ack. */
  observeResubmission(task: string): void {
    this.updatesResubmitted.inc({ task });
  }

  /**
   * Counts a round leaving REPORTING or AGGREGATING, as broadcast to the fleet (`round:closed`,
   * sent only after the state change is stored). `now` in epoch ms.
   */
  observeRoundClosed(closed: RoundClosed, now: number = Date.now()): { aggregationSeconds: number | null } {
    const task = closed.taskId;
    this.roundTransitions.inc({ task, state: closed.state });
    if (closed.state === 'AGGREGATING') {
      this.closedAt.set(closed.roundId, now);
      return { aggregationSeconds: null };
    }
    this.roundsTotal.inc({ task, outcome: closed.state.toLowerCase() });
    const started = this.closedAt.get(closed.roundId);
    this.closedAt.delete(closed.roundId);
    if (started === undefined || closed.state === 'ABANDONED') return { aggregationSeconds: null };
    const seconds = Math.max(0, now - started) / 1000;
    this.aggregationSeconds.observe({ task, outcome: closed.state.toLowerCase() }, seconds);
    return { aggregationSeconds: seconds };
  }

  /** Text exposition (Prometheus 0.0.4). */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
