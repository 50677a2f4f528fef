import {
  FlotillaError,
  type RoundPlan,
  type Telemetry,
  type UpdateSkip,
  type UpdateSubmission,
} from '@flotilla/protocol';
import type { DeviceArtifacts } from './artifacts.js';
import { DEFAULT_DEVICE_WATTS, estimateEnergyJ, startWorkMeter } from './energy.js';
import type { CoordinatorHttp } from './http-client.js';
import type { DeviceLogger } from './logger.js';
import type { FlotillaDeviceOptions } from './options.js';
import { buildUpdate } from './update-builder.js';

/** A signed update waiting for the coordinator's ack; survives disconnects until the deadline. */
export interface PendingUpdate {
  plan: RoundPlan;
  submission: UpdateSubmission;
  /** Whether `PUT /blobs/:sha256` succeeded (the blob is then not sent again on re-submission). */
  uploaded: boolean;
  /** `update:submit` emissions so far. */
  attempts: number;
  upload: () => Promise<void>;
}

export type RoundOutcome = { kind: 'update'; pending: PendingUpdate } | { kind: 'skip'; skip: UpdateSkip };

/** The `onTrained` event of a round's outcome: what was measured and what is about to be sent. */
export function trainedEvent(
  plan: RoundPlan,
  outcome: RoundOutcome,
): Parameters<NonNullable<FlotillaDeviceOptions['onTrained']>>[0] {
  if (outcome.kind === 'skip') return { plan, telemetry: outcome.skip.telemetry ?? null, update: null };
  const { metadata } = outcome.pending.submission;
  return {
    plan,
    telemetry: metadata.telemetry,
    update: { norm: metadata.reportedNorm, clipped: metadata.clipped, bytes: metadata.blobBytes },
  };
}

export interface RunRoundInput {
  plan: RoundPlan;
  options: FlotillaDeviceOptions;
  artifacts: DeviceArtifacts;
  http: CoordinatorHttp;
  logger: DeviceLogger;
  /** The device's stop signal; the round also aborts at `plan.deadline`. */
  signal: AbortSignal;
}

/**
 * One round on the device: fetch (or reuse) the base model and the plan's adapter version, train
 * with the injected trainer, then clip, encode and sign. Never throws: a failure becomes a skip
 * with reason `error` (the coordinator is told, the device goes on).
 */
export async function runRound(input: RunRoundInput): Promise<RoundOutcome> {
  const { plan, options, artifacts, logger } = input;
  artifacts.takeBytesDown();
  const roundSignal = AbortSignal.any([
    input.signal,
    AbortSignal.timeout(Math.max(1, plan.deadline - Date.now())),
  ]);
  let telemetry: Omit<Telemetry, 'bytesUp'> = emptyTelemetry();
  try {
    const baseModel = await artifacts.baseModel(plan.baseModelDigest);
    const adapter = await artifacts.adapterFor(plan);
    const meter = startWorkMeter();
    const outcome = await options.trainer.train(plan, {
      deviceId: options.deviceId,
      baseModel,
      adapter,
      signal: roundSignal,
      logger,
    });
    const work = meter();
    const steps = outcome.steps ?? 0;
    telemetry = {
      trainingMs: work.wallMs,
      steps,
      examples: outcome.kind === 'update' ? outcome.numExamples : 0,
      stepsPerSecond: work.wallMs > 0 ? steps / (work.wallMs / 1000) : 0,
      bytesDown: artifacts.takeBytesDown(),
      estimatedEnergyJ: estimateEnergyJ(work.cpuSeconds, options.watts ?? DEFAULT_DEVICE_WATTS),
      backend: (outcome.backend ?? 'cpu').slice(0, 32),
      ...(outcome.holdout ? { holdout: outcome.holdout } : {}),
    };
    if (outcome.kind === 'skip') {
      logger.info(
        { roundId: plan.roundId, reason: outcome.reason, detail: outcome.detail },
        'skipping the round',
      );
      return { kind: 'skip', skip: skip(plan, outcome.reason, outcome.detail, telemetry) };
    }
    roundSignal.throwIfAborted();
    const built = buildUpdate({
      plan,
      deviceId: options.deviceId,
      secretKey: options.keys.secretKey,
      delta: outcome.delta,
      numExamples: outcome.numExamples,
      telemetry,
      ...(options.clipping ? { clipping: options.clipping } : {}),
    });
    const digest = built.submission.metadata.blobDigest;
    logger.info(
      {
        roundId: plan.roundId,
        rawNorm: built.rawNorm,
        norm: built.submission.metadata.reportedNorm,
        clipped: built.submission.metadata.clipped,
        bytes: built.blob.byteLength,
      },
      'update ready',
    );
    return {
      kind: 'update',
      pending: {
        plan,
        submission: built.submission,
        uploaded: false,
        attempts: 0,
        upload: () => input.http.uploadBlob(digest, built.blob),
      },
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const code = FlotillaError.is(error) ? error.code : 'INTERNAL';
    logger.warn({ roundId: plan.roundId, code, message }, 'round failed on the device');
    return { kind: 'skip', skip: skip(plan, 'error', `${code}: ${message}`, telemetry) };
  }
}

function skip(
  plan: RoundPlan,
  reason: UpdateSkip['reason'],
  detail: string,
  telemetry: Omit<Telemetry, 'bytesUp'>,
): UpdateSkip {
  return {
    roundId: plan.roundId,
    reason,
    detail: detail.slice(0, 500),
    telemetry: { ...telemetry, bytesUp: 0 },
  };
}

function emptyTelemetry(): Omit<Telemetry, 'bytesUp'> {
  return {
    trainingMs: 0,
    steps: 0,
    examples: 0,
    stepsPerSecond: 0,
    bytesDown: 0,
    estimatedEnergyJ: 0,
    backend: 'cpu',
  };
}
