import type { Logger } from 'pino';
import {
  FlotillaError,
  isFinalUpdateRefusal,
  logLeafOf,
  toWireError,
  type LogLeaf,
  type LogProofResult,
  type UpdateReceipt,
  type UpdateSkip,
  type UpdateSkipResult,
  type UpdateSubmission,
} from '@flotilla/protocol';
import { acceptUpdate, isAcknowledgedResubmission, type AcceptUpdateDeps } from './accept-update.js';
import { acceptedUpdateEvent } from './accepted-update.js';
import type { RefusalLog } from './refusal-log.js';
import { RefusedUpdateError } from './refused-update-error.js';
import { coalesced } from '../shared/coalesced.js';

// What a selected device's answer does to its round: an update accepted (and logged
// `update.accepted`), acknowledged again (a re-submission after a lost ack) or refused (logged
// `update.refused`, counted), a skip stored. Accepted and refused updates are answered with
// their record's leaf in the round log, so the device can check the log holds its answer. A
// refusal for a final reason (protocol's FINAL_UPDATE_REFUSALS) counts its device as answered.
// Every effect and log event of an answer is here; the socket layer only parses the message and
// passes it on. After a stored answer, the round driver is told, since it may close the round early.

export interface RoundResponsesDeps {
  accept: AcceptUpdateDeps;
  /** Where refused updates go: the first per (round, device, reason) logged, repeats counted. */
  refusals: RefusalLog;
  /** Called after an answer is durable: may close the round (RoundManager.afterResponse). */
  afterResponse(roundId: string): Promise<void>;
  logger: Logger;
  /** Told of every refusal of an update for a task's round, and of every re-acknowledged update (/metrics). */
  observe?: {
    refusal(taskId: string, reason: string): void;
    resubmission(taskId: string): void;
  };
}

export class RoundResponses {
  /** Per round, the close check that answers arriving meanwhile share, and how many wait on it. */
  private readonly closeChecks = new Map<string, { check: () => Promise<void>; waiting: number }>();

  constructor(private readonly deps: RoundResponsesDeps) {}

  /**
   * Tells the round driver an answer arrived, without making the device wait for it. The check
   * reads the round's counts, so answers arriving while one runs share the next run: under load
   * a round is checked a few times, not once per answer.
   */
  private answered(roundId: string, log: Logger): void {
    let entry = this.closeChecks.get(roundId);
    if (!entry) {
      const check = coalesced(() =>
        this.deps
          .afterResponse(roundId)
          .catch((error: unknown) => log.error({ err: error }, 'close check failed')),
      );
      entry = { check, waiting: 0 };
      this.closeChecks.set(roundId, entry);
    }
    const current = entry;
    current.waiting++;
    void current.check().then(() => {
      if (--current.waiting === 0 && this.closeChecks.get(roundId) === current)
        this.closeChecks.delete(roundId);
    });
  }

  /**
   * An `update:submit` of the authenticated `deviceId`: resolves with the receipt once the update
   * is durable; rejects with the FlotillaError the device is answered with otherwise.
   */
  async submitUpdate(deviceId: string, submission: UpdateSubmission): Promise<UpdateReceipt> {
    const { metadata } = submission;
    const log = this.deps.logger.child({ deviceId, roundId: metadata.roundId });
    try {
      const { receipt, record, count, plan } = await acceptUpdate(this.deps.accept, deviceId, submission);
      const logged = await this.deps.accept.events.append(
        acceptedUpdateEvent(
          { taskId: metadata.taskId, roundId: metadata.roundId, clipNorm: plan.clipNorm },
          record,
        ),
      );
      log.info({ count }, 'update accepted');
      this.answered(metadata.roundId, log);
      // The device can prove its update was counted: the receipt names its record in the log.
      return { ...receipt, logLeaf: logged ? logLeafOf(logged) : null };
    } catch (error) {
      if (isAcknowledgedResubmission(error)) {
        // The device learns its update was accepted: counted apart, never as a refusal.
        this.deps.observe?.resubmission(metadata.taskId);
        await this.deps.accept.rounds.countResubmission(metadata.roundId);
        log.info('accepted update acknowledged again');
        throw error;
      }
      const logLeaf = await this.recordRefusal(deviceId, submission, error);
      // After its record is logged, so the log holds the refusal before the close it may cause.
      await this.countFinalRefusal(deviceId, metadata.roundId, error, log);
      if (!logLeaf) throw error;
      // The socket layer logs failures that are not FlotillaErrors; this one is about to become one.
      if (!(error instanceof FlotillaError)) log.error({ err: error }, 'update:submit failed');
      // The device can prove why it was refused: the answer names the refusal's record in the log.
      throw new RefusedUpdateError(toWireError(error), logLeaf, error);
    }
  }

  /** A `log:proof`: the inclusion proof of a record against the last signed tree head. */
  async proveInclusion(leafIndex: number): Promise<LogProofResult> {
    return { inclusion: await this.deps.accept.events.proveInclusion(leafIndex) };
  }

  /**
   * A final refusal (the device will not resend that update) counts its device as answered, if it
   * was selected for the round, which still takes responses, and had not answered otherwise.
   */
  private async countFinalRefusal(
    deviceId: string,
    roundId: string,
    error: unknown,
    log: Logger,
  ): Promise<void> {
    const { code } = toWireError(error);
    if (!isFinalUpdateRefusal(code)) return;
    const counted = await this.deps.accept.rounds.countFinalRefusal(roundId, deviceId, code, Date.now());
    if (counted === 'COUNTED') this.answered(roundId, log);
  }

  /** Counts and logs a refusal; resolves with the leaf of its record (of the first like it), if logged. */
  private async recordRefusal(
    deviceId: string,
    submission: UpdateSubmission,
    error: unknown,
  ): Promise<LogLeaf | null> {
    const { metadata } = submission;
    const wire = toWireError(error);
    const round = await this.deps.accept.rounds.get(metadata.roundId).catch(() => null);
    // Only a round with a plan was opened in the round log (round.opened is appended before
    // the plan is stored): a refusal naming a round still in selection, or abandoned there,
    // is not logged, or the log would hold an event of a round it never opened.
    let logLeaf: LogLeaf | null = null;
    if (round?.plan) {
      this.deps.observe?.refusal(round.taskId, wire.code);
      logLeaf = await this.deps.refusals.record({
        taskId: round.taskId,
        roundId: round.roundId,
        clipBound: round.plan.clipNorm,
        dp: round.dp === true,
        deviceId,
        error: wire,
        metadata,
      });
    }
    this.deps.logger.info({ deviceId, roundId: metadata.roundId, code: wire.code }, 'update refused');
    return logLeaf;
  }

  /** An `update:skip` of the authenticated `deviceId`: stored and counted, or refused. */
  async recordSkip(deviceId: string, skip: UpdateSkip): Promise<UpdateSkipResult> {
    const status = await this.deps.accept.rounds.skip(
      skip.roundId,
      deviceId,
      JSON.stringify({ reason: skip.reason, detail: skip.detail, at: Date.now() }),
    );
    if (status !== 'OK') throw new FlotillaError(status, `skip refused: ${status}`);
    this.answered(skip.roundId, this.deps.logger.child({ deviceId, roundId: skip.roundId }));
    return { recorded: true };
  }
}
