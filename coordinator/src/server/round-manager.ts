import {
  FlotillaError,
  type CheckIn,
  type CheckInResult,
  type RoundClosed,
  type SignedTask,
  type TaskDefinition,
} from '@flotilla/protocol';
import { readRoundOutcome, type RoundOutcome } from '../shared/round-outcomes.js';
import { readTaskRunState, type TaskRunState } from '../shared/task-control.js';
import { jitter, newRoundRecord, roundOpenedEvent, shuffle } from './round-plan-builder.js';
import { applyDecision } from './round-decision.js';
import { TERMINAL_STATES, sourcesOf, takesResponses } from './round-machine.js';
import type { RoundRecord } from './round-store.js';
import { everyoneAnswered, logRoundEnd } from './round-end.js';
import { enqueueAggregation, planRound } from './round-handoff.js';
import { RoundTimers } from './round-timers.js';
import type { RoundManagerDeps } from './round-manager-deps.js';

export type { FleetChannel, RoundDriverLease, RoundManagerDeps } from './round-manager-deps.js';

function unhandledState(state: never): never {
  throw new FlotillaError('INTERNAL', `round state ${String(state)} has no recovery`);
}

/** Every state a round may be abandoned from (SELECTING, CONFIGURING, REPORTING). */
const ABANDONABLE = sourcesOf('ABANDONED');

/** Why a round of a task that no longer runs is abandoned. */
function stoppedReason(run: TaskRunState): string {
  return `task ${run.status}${run.by === 'operator' ? ' by the operator' : ''}: ${run.reason}`;
}

/** What the socket layer needs from the round manager. */
export type RoundOps = Pick<RoundManager, 'checkIn'>;

/**
 * The round state machine. Every state lives in Redis; this object only holds timers, which
 * `start()` re-arms from the stored deadlines after a restart.
 */
export class RoundManager {
  private closed = false;
  private readonly timers = new RoundTimers({
    mayRun: () => !this.closed && this.leads(),
    onError: (error, timer) => this.deps.logger.error({ err: error, timer }, 'round timer failed'),
  });

  constructor(private readonly deps: RoundManagerDeps) {}

  private log(roundId: string) {
    return this.deps.logger.child({ roundId });
  }

  /** Resumes (or abandons) every task's round in flight and opens rounds where none is open. */
  async start(): Promise<void> {
    for (const signed of await this.deps.tasks.listTasks()) await this.recover(signed);
  }

  stop(): void {
    this.closed = true;
    this.suspend();
  }

  /** Drops every timer (the lease moved to another process, which re-arms them from Redis). */
  suspend(): void {
    this.timers.cancelAll();
  }

  /** True when this process drives the round state machines. */
  leads(): boolean {
    return this.deps.lease?.holds() ?? true;
  }

  /** A follower saw something the driver must act on: pass it on. */
  private forward(kind: 'select' | 'response', roundId: string): void {
    this.deps.lease
      ?.nudge({ kind, roundId })
      .catch((error: unknown) => this.log(roundId).error({ err: error }, 'nudge failed'));
  }

  private async recover(signed: SignedTask): Promise<void> {
    const round = await this.deps.rounds.current(signed.task.taskId);
    if (!round) return this.openRound(signed.task);
    const log = this.log(round.roundId);
    switch (round.state) {
      case 'SELECTING':
        // Waiting devices of a dead process drop out of the fleet-wide presence; others still wait.
        this.timers.arm(round.roundId, 'selection', round.selectionDeadline, () =>
          this.selectionTimeout(round.roundId),
        );
        log.info('resumed round in SELECTING');
        // Check-ins (and their nudges) may have arrived while no process drove.
        return this.maybeSelect(round.roundId, false);
      case 'CONFIGURING':
        return this.abandon(round, 'coordinator restarted during configuration');
      case 'REPORTING':
        if (this.deps.onRestart === 'abandon')
          return this.abandon(round, 'coordinator restarted (onRestart=abandon)');
        log.info({ accepted: round.acceptedCount }, 'resumed round in REPORTING');
        this.armReporting(round);
        // Everyone may have answered while no process drove.
        return this.afterResponse(round.roundId);
      case 'AGGREGATING': {
        const outcome = await readRoundOutcome(this.deps.redis, this.deps.keys.prefix, round.roundId);
        if (outcome) return this.applyOutcome(outcome);
        // Idempotent: the job id is deterministic.
        await enqueueAggregation(this.deps, round);
        return;
      }
      case 'COMMITTED':
      case 'REJECTED':
      case 'ABANDONED':
        return this.openNext(signed.task, round);
      default:
        // A state added to round-machine.ts must be handled here: this line then fails to compile.
        return unhandledState(round.state);
    }
  }

  /**
   * A task was registered, paused, resumed, stopped or archived (here, from the CLI, or in another
   * process; the driver hears of each on the tasks channel): open its first round, abandon the
   * round in flight of a stopped task, or select and open rounds again for a resumed one.
   */
  async onTaskChanged(taskId: string): Promise<void> {
    if (!this.leads()) return;
    const signed = await this.deps.tasks.getTask(taskId);
    if (!signed) return;
    const round = await this.deps.rounds.current(taskId);
    if (!round) return this.openRound(signed.task);
    const run = await this.runState(taskId);
    if (run.status === 'stopped' || run.status === 'archived') {
      // A round already aggregating is left to the worker to decide.
      if (ABANDONABLE.some((state) => state === round.state)) return this.abandon(round, stoppedReason(run));
      return;
    }
    if (run.status !== 'active') return;
    if (round.state === 'SELECTING')
      return this.maybeSelect(round.roundId, Date.now() >= round.selectionDeadline);
    if (TERMINAL_STATES.includes(round.state)) return this.openNext(signed.task, round);
  }

  private runState(taskId: string) {
    return readTaskRunState(this.deps.redis, this.deps.keys.prefix, taskId);
  }

  /** Opens the next round of `task` unless maxRounds is reached or the worker stopped the task. */
  async openRound(task: TaskDefinition, previous: RoundRecord | null = null): Promise<void> {
    if (this.closed) return;
    const roundNumber = (previous?.roundNumber ?? 0) + 1;
    if (task.rounds.maxRounds > 0 && roundNumber > task.rounds.maxRounds) {
      this.deps.logger.info({ taskId: task.taskId }, 'task reached maxRounds; no more rounds');
      return;
    }
    const run = await this.runState(task.taskId);
    if (run.status !== 'active') {
      this.deps.logger.info(
        { taskId: task.taskId, status: run.status, by: run.by, reason: run.reason },
        run.status === 'paused'
          ? 'task paused; its next round opens when it resumes'
          : 'task stopped; no more rounds',
      );
      return;
    }
    const record = newRoundRecord(task, roundNumber, Date.now());
    if (!(await this.deps.rounds.create(record))) return;
    this.log(record.roundId).info({ roundNumber }, 'round opened (SELECTING)');
    this.timers.arm(record.roundId, 'selection', record.selectionDeadline, () =>
      this.selectionTimeout(record.roundId),
    );
  }

  private async openNext(task: TaskDefinition, previous: RoundRecord): Promise<void> {
    const fresh = await this.deps.tasks.getTask(task.taskId);
    await this.openRound(fresh?.task ?? task, previous);
  }

  /** A device asks for work. */
  async checkIn(deviceId: string, checkIn: CheckIn, task: TaskDefinition): Promise<CheckInResult> {
    const retry = (reason: Extract<CheckInResult, { status: 'retry' }>['reason']): CheckInResult => ({
      status: 'retry',
      retryAfterMs: jitter(task.rounds.retryAfterMs),
      reason,
    });
    const { eligibility, budget } = checkIn;
    if (
      !eligibility.charging ||
      !eligibility.unmeteredNetwork ||
      eligibility.freeStorageBytes < task.baseModel.bytes
    )
      return retry('not-eligible');
    if (budget.maxBytes < task.policy.maxBlobBytes || budget.maxSeconds < 1) return retry('budget-too-small');
    const run = await this.runState(task.taskId);
    if (run.status !== 'active') return retry(run.status === 'paused' ? 'task-paused' : 'task-stopped');
    const round = await this.deps.rounds.current(task.taskId);
    if (!round) return retry('no-open-round');
    if (takesResponses(round) && (await this.deps.rounds.isSelected(round.roundId, deviceId))) {
      if (await this.deps.rounds.hasResponded(round.roundId, deviceId)) return retry('already-participated');
      // A selected device that reconnected (e.g. after a coordinator restart) gets its plan again.
      const plan = round.plan;
      if (plan) setImmediate(() => this.deps.fleet.toDevice(deviceId, 'round:plan', plan));
      return { status: 'waiting' };
    }
    if (round.state !== 'SELECTING') return retry(takesResponses(round) ? 'round-full' : 'no-open-round');
    await this.deps.rounds.addWaiting(round.roundId, deviceId);
    setImmediate(() => {
      this.maybeSelect(round.roundId, false).catch((error: unknown) =>
        this.log(round.roundId).error({ err: error }, 'selection failed'),
      );
    });
    return { status: 'waiting' };
  }

  /** The waiting devices, and those of them online fleet-wide. */
  private async onlineWaiting(roundId: string): Promise<{ all: number; online: string[] }> {
    const waiting = await this.deps.rounds.waiting(roundId);
    const online = await Promise.all(waiting.map((id) => this.deps.fleet.isOnline(id)));
    return { all: waiting.length, online: waiting.filter((_, i) => online[i] === true) };
  }

  /** A follower's nudge, handled by the driver. */
  async onNudge(nudge: { kind: 'select' | 'response'; roundId: string }): Promise<void> {
    if (!this.leads()) return;
    if (nudge.kind === 'select') return this.maybeSelect(nudge.roundId, false);
    return this.afterResponse(nudge.roundId);
  }

  private async selectionTimeout(roundId: string): Promise<void> {
    await this.maybeSelect(roundId, true);
  }

  /** Selects when targetSelect devices wait, or at the timeout when at least minSelect do. */
  private async maybeSelect(roundId: string, timedOut: boolean): Promise<void> {
    if (!this.leads()) return this.forward('select', roundId);
    const round = await this.deps.rounds.get(roundId);
    if (round?.state !== 'SELECTING') return;
    const run = await this.runState(round.taskId);
    if (run.status === 'paused')
      return timedOut ? this.keepSelecting(round, 'the task is paused') : undefined;
    if (run.status !== 'active') return this.abandon(round, stoppedReason(run));
    const { all, online: waiting } = await this.onlineWaiting(roundId);
    if (!timedOut && waiting.length < round.targetSelect) {
      // Enough devices wait but some are not seen online (another process's presence refresh
      // running late): look again shortly instead of waiting for the next check-in.
      if (all >= round.targetSelect)
        this.timers.arm(roundId, 'reselect', Date.now() + 1000, () => this.maybeSelect(roundId, false));
      return;
    }
    if (timedOut && all === 0) return this.keepSelecting(round, 'no device checked in');
    if (timedOut && waiting.length < round.minSelect && (await this.windowStillOpen(round))) return;
    if (timedOut && waiting.length < round.minSelect)
      return this.abandon(
        round,
        `selection timeout: ${waiting.length} of ${round.minSelect} devices checked in`,
      );
    if (!(await this.deps.rounds.transition(roundId, ['SELECTING'], 'CONFIGURING'))) return;
    this.timers.cancel(roundId, 'selection');
    const shuffled = shuffle(waiting);
    const selected = shuffled.slice(0, round.targetSelect);
    const notSelected = shuffled.slice(round.targetSelect);
    const signed = await this.deps.tasks.getTask(round.taskId);
    if (!signed) return this.abandon(round, 'task disappeared');
    const plan = await planRound(this.deps, round, signed.task);
    if (!(await this.deps.rounds.setSelected(roundId, selected))) return;
    // Logged before the plan is stored: once a round has a plan, updates (and refusals) naming it
    // can be logged, and each of them must follow its round's `round.opened` in the log.
    await this.deps.events.append(roundOpenedEvent(round, plan, signed.task));
    await this.deps.events.append({
      type: 'round.selected',
      taskId: round.taskId,
      roundId,
      devices: selected.map((d) => this.deps.events.pseudonymize(d)),
      eligible: waiting.length,
    });
    const ok = await this.deps.rounds.transition(roundId, ['CONFIGURING'], 'REPORTING', {
      plan: JSON.stringify(plan),
      deadline: plan.deadline,
      selectedCount: selected.length,
      // The promise round.opened just logged: how this round's updates appear in the log.
      dp: signed.task.policy.dp ? '1' : '0',
    });
    if (!ok) return;
    const log = this.log(roundId);
    log.info({ selected: selected.length, waiting: waiting.length }, 'round selected (REPORTING)');
    for (const deviceId of selected) this.deps.fleet.toDevice(deviceId, 'round:plan', plan);
    for (const deviceId of notSelected)
      this.deps.fleet.toDevice(deviceId, 'round:not-selected', {
        taskId: round.taskId,
        retryAfterMs: jitter(signed.task.rounds.retryAfterMs),
      });
    const fresh = await this.deps.rounds.get(roundId);
    if (fresh) this.armReporting(fresh);
  }

  /**
   * The selection window runs `selectionTimeoutMs` from the first check-in, not from the opening:
   * after an idle wait (`keepSelecting`), devices arriving together would otherwise get only what
   * was left of the current window. True (the timeout moved to the window's end) while it runs.
   */
  private async windowStillOpen(round: RoundRecord): Promise<boolean> {
    const signed = await this.deps.tasks.getTask(round.taskId);
    if (round.firstCheckInAt === undefined || !signed) return false;
    const windowEnd = round.firstCheckInAt + signed.task.rounds.selectionTimeoutMs;
    return (
      Date.now() < windowEnd &&
      this.moveSelectionDeadline(
        round,
        windowEnd,
        'waiting for the end of the selection window, which runs from the first check-in',
      )
    );
  }

  /**
   * No device checked in before the selection timeout, or the task is paused: the round stays open
   * for another `selectionTimeoutMs` instead of being abandoned, so an idle fleet (or a pause) does
   * not use up `maxRounds`. Nothing of the round was logged yet, and nothing is: the round log
   * only holds rounds that ran.
   */
  private async keepSelecting(round: RoundRecord, why: string): Promise<void> {
    const signed = await this.deps.tasks.getTask(round.taskId);
    if (!signed) return this.abandon(round, 'task disappeared');
    await this.moveSelectionDeadline(
      round,
      Date.now() + signed.task.rounds.selectionTimeoutMs,
      `${why} at the selection timeout; the round keeps waiting (not counted against maxRounds)`,
    );
  }

  /** Stores a later selection deadline and re-arms the timeout; false when the round moved on. */
  private async moveSelectionDeadline(round: RoundRecord, at: number, message: string): Promise<boolean> {
    if (!(await this.deps.rounds.extendSelection(round.roundId, at))) return false;
    this.log(round.roundId).info({ selectionDeadline: at }, message);
    this.timers.arm(round.roundId, 'selection', at, () => this.selectionTimeout(round.roundId));
    return true;
  }

  private armReporting(round: RoundRecord): void {
    const at = Math.min(round.deadline ?? Date.now(), round.closeAt ?? Number.POSITIVE_INFINITY);
    this.timers.arm(round.roundId, 'reporting', at, () => this.endReporting(round.roundId, false));
  }

  /** Called after an update or skip is durable: may close the round early. */
  async afterResponse(roundId: string): Promise<void> {
    if (!this.leads()) return this.forward('response', roundId);
    const round = await this.deps.rounds.get(roundId);
    if (!round || !takesResponses(round)) return;
    if (everyoneAnswered(round)) return this.endReporting(roundId, true);
    if (round.closeAt !== undefined) this.armReporting(round);
  }

  /** Deadline, accept window, or everyone answered: close with quorum, else abandon. */
  private async endReporting(roundId: string, answered: boolean): Promise<void> {
    const round = await this.deps.rounds.get(roundId);
    if (!round || !takesResponses(round)) return;
    if (!answered && Date.now() < Math.min(round.deadline ?? 0, round.closeAt ?? Number.POSITIVE_INFINITY)) {
      this.armReporting(round);
      return;
    }
    // Quorum and the count closed with are checked in the same step as the state change: an
    // update excluded (revocation) until then is not counted, none can be excluded after.
    const closed = await this.deps.rounds.closeReporting(roundId, Date.now());
    if (closed.status === 'QUORUM')
      return this.abandon(round, `quorum missed: ${closed.accepted} of ${round.minReports} updates`);
    if (closed.status !== 'OK') return;
    this.timers.cancel(roundId, 'reporting');
    // Told first: the worker's decision, broadcast when it arrives, must not overtake it.
    this.deps.fleet.broadcast('round:closed', { roundId, taskId: round.taskId, state: 'AGGREGATING' });
    // Why it closed, from the counts as the close froze them: a deadline timer may fire after the
    // last answer arrived (before its own check ran), and then every device had answered.
    const final = (await this.deps.rounds.get(roundId)) ?? round;
    await logRoundEnd(this.deps, round, { kind: 'closed', everyoneAnswered: everyoneAnswered(final) });
    await enqueueAggregation(this.deps, round);
  }

  async abandon(round: RoundRecord, reason: string): Promise<void> {
    const ok = await this.deps.rounds.transition(round.roundId, ABANDONABLE, 'ABANDONED', {
      reason,
      closedAt: Date.now(),
    });
    if (!ok) return;
    this.timers.cancel(round.roundId, 'selection', 'reselect', 'reporting');
    this.log(round.roundId).warn({ reason }, 'round abandoned');
    await logRoundEnd(this.deps, round, { kind: 'abandoned', reason });
    const closed: RoundClosed = {
      roundId: round.roundId,
      taskId: round.taskId,
      state: 'ABANDONED',
      reason: reason.slice(0, 500),
    };
    this.deps.fleet.broadcast('round:closed', closed);
    const signed = await this.deps.tasks.getTask(round.taskId);
    if (signed) await this.openNext(signed.task, round);
  }

  /** The worker decided (round-decision.ts): COMMITTED or REJECTED, the fleet told; the next round opens. */
  async applyOutcome(outcome: RoundOutcome): Promise<void> {
    // Every process hears the outcome; the driver applies it (a new driver reads it back on takeover).
    if (!this.leads()) return;
    const round = await applyDecision(this.deps, outcome);
    if (!round) return;
    const signed = await this.deps.tasks.getTask(round.taskId);
    if (signed) await this.openNext(signed.task, round);
  }
}
