// Round overhead: from the last accepted update (its ack at the device) to `adapter:promoted` at
// the devices, with the coordinator and the aggregation worker (BullMQ, worker thread for the math)
// in two child processes, for 100 and 1,000 updates of 100,000 parameters.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StrategyConfigSchema, decodeFloat32Tensors } from '@flotilla/protocol';
import { startEmbeddedRedis } from '@flotilla/coordinator/shared';
import { aggregate, flattenTensors, type WeightedUpdate } from '@flotilla/coordinator/worker';
import type { BenchDevice, DeltaBlob } from '../lib/bench-device.js';
import { startCoordinatorChild } from '../lib/coordinator-handle.js';
import {
  FFA_100K,
  LORA_100K,
  benchTask,
  enrollDevices,
  makeDeltaBlobs,
  runReportingRound,
  type DeltaLayout,
  type RoundRun,
} from '../lib/fleet.js';
import { interleaved, sleep } from '../lib/measure.js';
import type { BenchRow, SectionResult } from '../lib/report.js';

/** Top-level key of `bench/results.json`: last ack to promoted at every device, 1,000 FFA-LoRA updates. */
export const ROUND_OVERHEAD_KEYS = ['roundOverheadMs1000'] as const;
/** Issue 20's goal for that figure, with one worker process. */
const ROUND_OVERHEAD_GOAL_MS = 2000;

export interface RoundOverheadOptions {
  quick: boolean;
}

interface OverheadRun {
  updates: number;
  layout: DeltaLayout;
  decision: 'COMMITTED' | 'REJECTED' | 'ABANDONED' | 'TIMEOUT';
  reason: string | null;
  round: Omit<RoundRun, 'lastAckAt'>;
  /** ms from the last accepted ack to `round:closed` AGGREGATING at the first device. */
  toAggregatingMs: number | null;
  /** ms from the last accepted ack to `adapter:promoted` at the first / the last device. */
  toFirstPromotedMs: number | null;
  toAllPromotedMs: number | null;
  /** Devices that heard `adapter:promoted`, and devices whose socket had dropped by then. */
  promotedDevices: number;
  disconnectedDevices: number;
  /** FedAvg of the same deltas in the bench process (decode excluded): the compute floor. */
  fedavgComputeMs: number;
}

/**
 * Waits until every device still connected heard `adapter:promoted` for the task (a device whose
 * socket dropped is counted apart), or the round ended otherwise.
 */
async function waitForDecision(
  devices: readonly BenchDevice[],
  taskId: string,
  roundId: string,
  timeoutMs: number,
): Promise<{ decision: OverheadRun['decision']; reason: string | null }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const heard = (d: BenchDevice): boolean => d.promoted.some((p) => p.event.taskId === taskId);
    if (devices.some(heard) && devices.every((d) => heard(d) || d.socket?.connected !== true))
      return { decision: 'COMMITTED', reason: null };
    for (const d of devices) {
      const end = d.closed.find(
        (c) => c.event.roundId === roundId && (c.event.state === 'REJECTED' || c.event.state === 'ABANDONED'),
      );
      if (end)
        return { decision: end.event.state as 'REJECTED' | 'ABANDONED', reason: end.event.reason ?? null };
    }
    if (Date.now() > deadline) return { decision: 'TIMEOUT', reason: `no decision within ${timeoutMs} ms` };
    await sleep(10);
  }
}

function fedavgFloor(blobs: readonly DeltaBlob[]): number {
  const updates: WeightedUpdate[] = blobs.map((b) => {
    const { tensors } = decodeFloat32Tensors(b.bytes);
    return { values: flattenTensors(tensors).values, weight: 32 };
  });
  const fedavg = StrategyConfigSchema.parse({ name: 'fedavg' });
  return interleaved(
    {
      fedavg: () => {
        aggregate(fedavg, updates);
      },
    },
    { warmup: 1, repeats: 3, budgetMs: 10_000 },
  ).medianMs.fedavg;
}

/** One measured configuration; `repeats` rounds of it, reported by their median (default 1). */
interface OverheadLevel {
  count: number;
  layout: DeltaLayout;
  repeats?: number;
}

export async function runRoundOverhead(
  options: RoundOverheadOptions & { levels?: OverheadLevel[] },
): Promise<SectionResult> {
  // FFA-LoRA (exact `ffa` rule) is the configuration DESIGN.md recommends; the full run adds a small
  // LoRA round with the default FedIT rule, whose exactness diagnostic forms every B_i·A_i.
  // The 1,000-update round runs three times: one run on a shared machine varied by ±30%.
  const levels: OverheadLevel[] =
    options.levels ??
    (options.quick
      ? [{ count: 100, layout: FFA_100K }]
      : [
          { count: 100, layout: FFA_100K },
          { count: 1000, layout: FFA_100K, repeats: 3 },
          { count: 20, layout: FFA_100K },
          { count: 20, layout: LORA_100K },
        ]);
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-round-'));
  const redis = await startEmbeddedRedis({ dataDir: join(dir, 'redis') });
  const runs: OverheadRun[] = [];
  try {
    const common = {
      redisUrl: redis.url,
      prefix: `bench-round-${randomBytes(3).toString('hex')}`,
      stateDir: join(dir, 'state'),
    };
    const coordinator = await startCoordinatorChild({ ...common, role: 'coordinator' });
    // The worker is its own process, as in production; it reads the key the coordinator created.
    const worker = await startCoordinatorChild({ ...common, role: 'worker' }).catch(
      async (error: unknown) => {
        await coordinator.stop();
        throw error;
      },
    );
    try {
      const rounds = levels.flatMap((level) =>
        Array.from({ length: level.repeats ?? 1 }, (_, repeat) => ({ ...level, repeat })),
      );
      for (const { count, layout, repeat } of rounds) {
        process.stderr.write(
          `bench: round-overhead: ${count} updates (${layout.mode}), run ${repeat + 1}…\n`,
        );
        const taskId = `overhead-${layout.mode}-${count}${repeat > 0 ? `-${repeat + 1}` : ''}`;
        const roundId = `${taskId}:1`;
        const blobs = makeDeltaBlobs(count, layout);
        await coordinator.call({ cmd: 'create-task', task: benchTask(taskId, count, layout) });
        const devices = await enrollDevices(coordinator, {
          label: `ov-${layout.mode}-${count}${repeat > 0 ? `-${repeat + 1}` : ''}`,
          count,
        });
        try {
          const { lastAckAt, ...round } = await runReportingRound({
            devices,
            blobs,
            taskId,
            concurrency: 32,
            timeoutMs: count >= 1000 ? 240_000 : 90_000,
          });
          const waited = await waitForDecision(devices, taskId, roundId, count >= 1000 ? 240_000 : 120_000);
          const { decision } = waited;
          let { reason } = waited;
          if (decision === 'TIMEOUT') {
            // Everything that tells where the round stopped: its state, the devices, both processes.
            const state = await coordinator
              .call({ cmd: 'round', roundId }, 10_000)
              .then((r) => (r as { state?: string } | null)?.state ?? 'unknown')
              .catch((error: unknown) => `not known (${String(error)})`);
            const connected = devices.filter((d) => d.socket?.connected === true).length;
            const heardClose = devices.filter((d) =>
              d.closed.some((c) => c.event.roundId === roundId),
            ).length;
            reason =
              `${reason ?? ''}; the round was still ${state}; ${connected}/${count} devices connected, ` +
              `${heardClose} heard round:closed; coordinator ${coordinator.diagnostics()}; worker ${worker.diagnostics()}`;
          }
          const closedAt = devices.flatMap((d) =>
            d.closed
              .filter((c) => c.event.roundId === roundId && c.event.state === 'AGGREGATING')
              .map((c) => c.at),
          );
          const promotedAt = devices.flatMap((d) =>
            d.promoted.filter((p) => p.event.taskId === taskId).map((p) => p.at),
          );
          const since = (times: number[], pick: (...v: number[]) => number): number | null =>
            times.length === 0 ? null : pick(...times) - lastAckAt;
          runs.push({
            updates: count,
            layout,
            decision,
            reason,
            round,
            toAggregatingMs: since(closedAt, Math.min),
            toFirstPromotedMs: since(promotedAt, Math.min),
            toAllPromotedMs: decision === 'COMMITTED' ? since(promotedAt, Math.max) : null,
            promotedDevices: promotedAt.length,
            disconnectedDevices: devices.filter((d) => d.socket?.connected !== true).length,
            fedavgComputeMs: fedavgFloor(blobs),
          });
        } finally {
          for (const d of devices) d.disconnect();
        }
      }
    } finally {
      await worker.stop();
      await coordinator.stop();
    }
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const rule = (run: OverheadRun): string => (run.layout.mode === 'ffa-lora' ? 'ffa-lora/ffa' : 'lora/fedit');
  // Runs of one level, reported by the run with the median time to every device (a run that did not
  // commit counts as the slowest).
  const medianRuns = levels.flatMap(({ count, layout }) => {
    const same = runs
      .filter((r) => r.updates === count && r.layout === layout)
      .sort((a, b) => (a.toAllPromotedMs ?? Infinity) - (b.toAllPromotedMs ?? Infinity));
    const middle = same[(same.length - 1) >> 1];
    return middle ? [{ run: middle, all: same }] : [];
  });
  const rows: BenchRow[] = medianRuns.map(({ run, all }) => ({
    section: 'round-overhead',
    measure:
      `last ack -> adapter:promoted at all devices, ${run.updates} updates (${rule(run)})` +
      (all.length > 1 ? `, median of ${all.length} rounds` : ''),
    ours: run.toAllPromotedMs,
    oursUnit: 'ms',
    reference: run.fedavgComputeMs,
    referenceUnit: 'ms',
    referenceName: 'FedAvg of the same deltas in-process',
    ratio: run.toAllPromotedMs === null ? null : run.toAllPromotedMs / run.fedavgComputeMs,
    ratioMeaning: 'overhead / FedAvg compute',
    note:
      (all.length > 1
        ? `rounds ${all.map((r) => (r.toAllPromotedMs === null ? r.decision : r.toAllPromotedMs.toFixed(0))).join(', ')} ms; `
        : '') +
      (run.decision === 'COMMITTED'
        ? `to AGGREGATING ${run.toAggregatingMs?.toFixed(0) ?? '-'} ms, to first device ${run.toFirstPromotedMs?.toFixed(0) ?? '-'} ms; ` +
          `${run.promotedDevices}/${run.updates} devices told (${run.disconnectedDevices} dropped); ingest ${run.round.acceptedPerSecond.toFixed(1)} updates/s` +
          (run.round.uploadRetries > 0
            ? `; ${run.round.uploadRetries} uploads sent again on a fresh socket`
            : '')
        : `round ended ${run.decision}: ${run.reason ?? ''}`),
  }));
  const medians = medianRuns.map((m) => m.run);
  const fedit = medians.find((r) => r.layout.mode === 'lora');
  const ffaSame = medians.find((r) => r.layout.mode === 'ffa-lora' && r.updates === fedit?.updates);
  if (fedit?.toAllPromotedMs != null && ffaSame?.toAllPromotedMs != null) {
    rows.push({
      section: 'round-overhead',
      measure: `LoRA with FedIT rule, ${fedit.updates} updates`,
      ours: fedit.toAllPromotedMs,
      oursUnit: 'ms',
      reference: ffaSame.toAllPromotedMs,
      referenceUnit: 'ms',
      referenceName: 'FFA-LoRA, same count',
      ratio: fedit.toAllPromotedMs / ffaSame.toAllPromotedMs,
      ratioMeaning: 'fedit / ffa round overhead',
      note:
        'the FedIT exactness diagnostic (worker/lora/fedit-error.ts) takes r x r Gram blocks of the ' +
        'factors, O((out + in)·(N·r)²), instead of forming B_i·A_i (out x in) per update; 3125 x 3125, r 16 here',
    });
  }
  const thousand = medians.find((r) => r.updates === 1000 && r.layout.mode === 'ffa-lora');
  if (thousand?.toAllPromotedMs != null) {
    rows.push({
      section: 'round-overhead',
      measure: 'last ack -> adapter:promoted at all devices, 1000 updates, against the goal',
      ours: thousand.toAllPromotedMs,
      oursUnit: 'ms',
      reference: ROUND_OVERHEAD_GOAL_MS,
      referenceUnit: 'ms',
      referenceName: 'goal (issue 20)',
      ratio: thousand.toAllPromotedMs / ROUND_OVERHEAD_GOAL_MS,
      ratioMeaning: 'ours / goal (goal <= 1)',
    });
  }
  const keys: Record<string, number> =
    thousand?.toAllPromotedMs != null ? { roundOverheadMs1000: thousand.toAllPromotedMs } : {};
  return { rows, details: { levels, runs }, keys };
}
