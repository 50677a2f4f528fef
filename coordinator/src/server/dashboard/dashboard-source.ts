import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { SignedTask } from '@flotilla/protocol';
import type { AdapterRegistry } from '../../shared/adapter-registry.js';
import type { RedisKeys } from '../../shared/keys.js';
import type { TaskRegistry } from '../../shared/task-registry.js';
import { AcceptedUpdateSchema } from '../accepted-update.js';
import type { DeviceRegistry } from '../device-registry.js';
import type { RoundLogFollower } from '../metrics/round-log-follower.js';
import { TERMINAL_STATES } from '../round-machine.js';
import { RoundRecordSchema } from '../round-store.js';
import { readTaskRunState } from '../../shared/task-control.js';
import {
  taskHeader,
  taskLogFacts,
  type DashboardAdapterVersion,
  type DashboardRole,
  type DashboardRound,
  type DashboardSnapshot,
  type DashboardTask,
  type DashboardTaskStatus,
} from './dashboard-snapshot.js';

export interface DashboardSourceOptions {
  redis: Redis;
  keys: RedisKeys;
  tasks: TaskRegistry;
  adapters: AdapterRegistry;
  devices: DeviceRegistry;
  roundLog: RoundLogFollower;
  /** Distinct devices with an authenticated socket. */
  connectedDevices: () => number;
  /** Whether a device has a live socket on any coordinator (operator view). */
  isOnline?: (deviceId: string) => boolean | Promise<boolean>;
  /** Rounds of history per task, most recent first. Default 30. */
  historyLimit?: number;
  /** Adapter versions per task, most recent first. Default 30. */
  versionLimit?: number;
  /** A snapshot is reused for this long, in ms, so many viewers cost one build. Default 250. */
  cacheMs?: number;
}

// The stored round hash holds a few fields the round store does not model.
const StoredRoundSchema = RoundRecordSchema.extend({
  closedAt: z.coerce.number().optional(),
  decidedAt: z.coerce.number().optional(),
  refusedCount: z.coerce.number().int().default(0),
  resubmittedCount: z.coerce.number().int().default(0),
});

/** Builds dashboard snapshots from Redis (round store, registries) and the round log. */
export class DashboardSource {
  private cache: { at: number; snapshot: Omit<DashboardSnapshot, 'role' | 'devices'> } | null = null;
  private building: Promise<Omit<DashboardSnapshot, 'role' | 'devices'>> | null = null;

  constructor(private readonly options: DashboardSourceOptions) {}

  /** The snapshot for `role`; operators also get the device list. */
  async snapshot(role: DashboardRole, now: number = Date.now()): Promise<DashboardSnapshot> {
    const cacheMs = this.options.cacheMs ?? 250;
    let shared = this.cache && now - this.cache.at < cacheMs ? this.cache.snapshot : null;
    if (!shared) {
      this.building ??= this.build().finally(() => (this.building = null));
      shared = await this.building;
      this.cache = { at: now, snapshot: shared };
    }
    if (role !== 'operator') return { ...shared, role };
    const isOnline = this.options.isOnline ?? (() => false);
    const devices = await Promise.all(
      (await this.options.devices.listDevices()).map(async (d) => ({
        deviceId: d.deviceId,
        status: d.status,
        enrolledAt: d.enrolledAt,
        online: await isOnline(d.deviceId),
      })),
    );
    return { ...shared, role, devices };
  }

  private async build(): Promise<Omit<DashboardSnapshot, 'role' | 'devices'>> {
    const { roundLog } = this.options;
    await roundLog.refresh();
    const summary = roundLog.summary();
    const signedTasks = await this.options.tasks.listTasks();
    const tasks = await Promise.all(signedTasks.map((signed) => this.task(signed, summary)));
    const devices = await this.options.devices.listDevices();
    // A device checked in to several tasks' rounds is one eligible device.
    const waitingSets = tasks.flatMap((t) =>
      t.current ? [this.options.keys.roundWaiting(t.current.roundId)] : [],
    );
    const eligible = waitingSets.length === 0 ? 0 : (await this.options.redis.sunion(...waitingSets)).length;
    return {
      serverTime: Date.now(),
      fleet: {
        enrolled: devices.filter((d) => d.status === 'active').length,
        revoked: devices.filter((d) => d.status === 'revoked').length,
        connected: this.options.connectedDevices(),
        eligible,
      },
      tasks,
      chain: await roundLog.chainStatus(),
    };
  }

  private async task(
    signed: SignedTask,
    summary: ReturnType<RoundLogFollower['summary']>,
  ): Promise<DashboardTask> {
    const { keys, redis } = this.options;
    const taskId = signed.task.taskId;
    const facts = taskLogFacts(summary, taskId);
    const currentId = await redis.get(keys.currentRound(taskId));
    const current = currentId === null ? null : await this.round(currentId, facts.refusedByRound);
    const history: DashboardRound[] = [];
    if (current) {
      const limit = this.options.historyLimit ?? 30;
      history.push(current);
      // Round ids are `<taskId>:<n>`, numbered from 1.
      for (let n = current.roundNumber - 1; n >= 1 && history.length < limit; n--) {
        const round = await this.round(`${taskId}:${n}`, facts.refusedByRound);
        if (round) history.push(round);
      }
    }
    const latestVersion = await this.options.adapters.latestVersion(taskId);
    const { status, statusReason } = await this.status(signed, current);
    const adapters: DashboardAdapterVersion[] = [];
    const versionLimit = this.options.versionLimit ?? 30;
    for (let v = latestVersion; v >= 1 && adapters.length < versionLimit; v--) {
      const manifest = (await this.options.adapters.getManifest(taskId, v))?.manifest;
      if (!manifest) continue;
      adapters.push({
        version: manifest.version,
        parentVersion: manifest.parentVersion,
        roundId: manifest.roundId,
        createdAt: manifest.createdAt,
        decision: manifest.audit.decision,
        reasons: manifest.audit.reasons,
        rollbackOf: manifest.rollbackOf,
        participants: manifest.aggregation.participants,
        strategy: manifest.aggregation.strategy,
        epsilon: manifest.privacy?.epsilon ?? null,
        adapterDigest: manifest.adapter.f32.digest,
        holdoutAccuracy: manifest.metrics.holdoutAccuracy ?? null,
        holdoutLoss: manifest.metrics.holdoutLoss ?? null,
      });
    }
    const live = adapters.find((a) => a.version === latestVersion);
    const holdout =
      live && (live.holdoutAccuracy !== null || live.holdoutLoss !== null)
        ? { version: live.version, accuracy: live.holdoutAccuracy, loss: live.holdoutLoss }
        : null;
    return {
      ...taskHeader(signed),
      status,
      statusReason,
      holdout,
      current,
      history,
      latestVersion,
      adapters,
      decisions: facts.decisions.slice(0, 50),
      epsilon: facts.epsilon,
    };
  }

  /** Operator's or worker's status, else finished once the `maxRounds`-th round has ended. */
  private async status(
    signed: SignedTask,
    current: DashboardRound | null,
  ): Promise<{ status: DashboardTaskStatus; statusReason: string | null }> {
    const run = await readTaskRunState(this.options.redis, this.options.keys.prefix, signed.task.taskId);
    if (run.status !== 'active')
      return {
        status: run.status,
        statusReason: run.by === 'worker' ? `stopped by the worker: ${run.reason}` : run.reason,
      };
    const { maxRounds } = signed.task.rounds;
    if (
      maxRounds > 0 &&
      current &&
      current.roundNumber >= maxRounds &&
      TERMINAL_STATES.includes(current.state)
    )
      return { status: 'finished', statusReason: `its ${maxRounds} rounds have ended` };
    return { status: 'running', statusReason: null };
  }

  private async round(
    roundId: string,
    refusedByRound: Map<string, Record<string, number>>,
  ): Promise<DashboardRound | null> {
    const { keys, redis } = this.options;
    const raw = await redis.hgetall(keys.round(roundId));
    if (Object.keys(raw).length === 0) return null;
    const parsed = StoredRoundSchema.safeParse(raw);
    if (!parsed.success) return null;
    const r = parsed.data;
    const [checkedIn, updates, refusals] = await Promise.all([
      redis.scard(keys.roundWaiting(roundId)),
      redis.hvals(keys.roundUpdates(roundId)),
      redis.hgetall(keys.roundRefusals(roundId)),
    ]);
    // Refusals by reason as counted at refusal time (`<pseudonym> <reason>` -> n); the round log
    // holds repeats only once they are flushed, so it is the fallback for rounds counted before.
    const byReason: Record<string, number> = {};
    for (const [field, n] of Object.entries(refusals)) {
      const reason = field.slice(field.indexOf(' ') + 1);
      byReason[reason] = (byReason[reason] ?? 0) + Number(n);
    }
    const norms: number[] = [];
    const normsWithheld = r.dp === true;
    // A DP round publishes nothing computed from one update: no norm, no clipped flag.
    let clipped = 0;
    if (!normsWithheld)
      for (const json of updates) {
        const update = AcceptedUpdateSchema.safeParse(JSON.parse(json));
        if (!update.success) continue;
        norms.push(update.data.norm);
        if (update.data.clipped) clipped++;
      }
    const clipNorm = r.plan?.clipNorm ?? null;
    return {
      roundId,
      roundNumber: r.roundNumber,
      state: r.state,
      openedAt: r.openedAt,
      selectionDeadline: r.selectionDeadline,
      deadline: r.deadline ?? null,
      closeAt: r.closeAt ?? null,
      closedAt: r.closedAt ?? null,
      decidedAt: r.decidedAt ?? null,
      goalCount: r.goalCount,
      minReports: r.minReports,
      checkedIn,
      selected: r.selectedCount,
      accepted: r.acceptedCount,
      skipped: r.skippedCount,
      refused: r.refusedCount,
      resubmitted: r.resubmittedCount,
      refusedByReason: Object.keys(byReason).length > 0 ? byReason : (refusedByRound.get(roundId) ?? {}),
      norms: norms.sort((a, b) => a - b),
      normsWithheld,
      clipNorm,
      clipped,
      allAtClipBound:
        clipNorm !== null &&
        norms.length > 0 &&
        norms.every((n) => Math.abs(n - clipNorm) <= 1e-4 * clipNorm),
      reason: r.reason ?? null,
    };
  }
}
