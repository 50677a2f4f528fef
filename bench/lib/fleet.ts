// The bench's fleet: LoRA tasks of 100,000 trained adapter parameters, delta files for it, enrolment of
// simulated devices through the coordinator child, and one reporting round driven end to end.
import { createHash } from 'node:crypto';
import { encodeFloat32Tensors, loraTensorNames, type RoundPlan } from '@flotilla/protocol';
import { BenchDevice, NativeSigner, uploadRetries, withConcurrency, type DeltaBlob } from './bench-device.js';
import type { CoordinatorHandle } from './coordinator-handle.js';
import { fillPseudoRandom, percentile, sleep } from './measure.js';

export const MODULE = 'dense';
const CLIP_NORM = 10;

/**
 * The adapter of a bench task. `lora`: A [r, in] and B [out, r] both in the delta, aggregated by
 * the FedIT rule (the default `loraRule`). `ffa-lora`: A frozen from the seed, the delta is B only,
 * aggregated exactly by the `ffa` rule.
 */
export interface DeltaLayout {
  mode: 'lora' | 'ffa-lora';
  in: number;
  out: number;
  r: number;
}

/** 16·3125 + 3125·16 = 100,000 trained parameters per delta. */
export const LORA_100K: DeltaLayout = { mode: 'lora', in: 3125, out: 3125, r: 16 };
/** B only: 6250·16 = 100,000 trained parameters per delta. */
export const FFA_100K: DeltaLayout = { mode: 'ffa-lora', in: 3125, out: 6250, r: 16 };

export function deltaParams(layout: DeltaLayout): number {
  return (layout.mode === 'lora' ? layout.r * layout.in : 0) + layout.out * layout.r;
}

/** The task registered for a bench round: every one of `goalCount` devices is selected and reports. */
export function benchTask(taskId: string, goalCount: number, layout: DeltaLayout): Record<string, unknown> {
  return {
    taskId,
    adapter: { mode: layout.mode, targetModules: [MODULE], r: layout.r, alpha: 2 * layout.r, seed: 1 },
    moduleShapes: { [MODULE]: { in: layout.in, out: layout.out } },
    rounds: {
      goalCount,
      overSelection: 1,
      minGoalFraction: 1,
      minReports: goalCount,
      selectionTimeoutMs: 600_000,
      reportingDeadlineMs: 600_000,
      retryAfterMs: 1_000,
      training: { epochs: 1, batchSize: 32, learningRate: 0.1, fedProxMu: 0, optimizer: 'sgd' },
    },
    policy: {
      allowedModules: [MODULE],
      clipNorm: CLIP_NORM,
      maxBlobBytes: 1024 * 1024,
      strategy: { name: 'fedavg', loraRule: layout.mode === 'ffa-lora' ? 'ffa' : 'fedit' },
      audit: {},
    },
    createdAt: Date.now(),
  };
}

/**
 * `count` distinct deltas sharing one direction plus noise, with norms spread evenly over [0.5, 1.5]
 * so that the worker's MAD audit sees an ordinary norm distribution (equal norms make MAD zero).
 * Another `firstSeed` gives other deltas (other digests) of the same shape.
 */
export function makeDeltaBlobs(count: number, layout: DeltaLayout, firstSeed = 1000): DeltaBlob[] {
  const names = loraTensorNames(MODULE);
  const params = deltaParams(layout);
  const common = fillPseudoRandom(new Float32Array(params), 12345);
  return Array.from({ length: count }, (_, i) => {
    const values = fillPseudoRandom(new Float32Array(params), firstSeed + i);
    let sq = 0;
    for (let k = 0; k < values.length; k++) {
      const v = (common[k] ?? 0) + 0.3 * (values[k] ?? 0);
      values[k] = v;
      sq += v * v;
    }
    const target = 0.5 + i / Math.max(1, count - 1);
    const scale = target / Math.sqrt(sq);
    let norm2 = 0;
    for (let k = 0; k < values.length; k++) {
      const v = Math.fround((values[k] ?? 0) * scale);
      values[k] = v;
      norm2 += v * v;
    }
    const tensors = new Map<string, { shape: number[]; values: Float32Array }>();
    const split = layout.mode === 'lora' ? layout.r * layout.in : 0;
    if (split > 0) tensors.set(names.a, { shape: [layout.r, layout.in], values: values.subarray(0, split) });
    tensors.set(names.b, { shape: [layout.out, layout.r], values: values.subarray(split) });
    const bytes = encodeFloat32Tensors(tensors);
    return { bytes, digest: createHash('sha256').update(bytes).digest('hex'), norm: Math.sqrt(norm2) };
  });
}

/**
 * Enrolls devices `<label>-0..count-1` in batches, each with its own key (seeded from the label and
 * index): the coordinator refuses one public key under several device ids (`KEY_IN_USE`).
 */
export async function enrollDevices(
  coordinator: CoordinatorHandle,
  options: { label: string; count: number },
): Promise<BenchDevice[]> {
  const devices = Array.from({ length: options.count }, (_, i) => {
    const seed = new Uint8Array(32);
    new DataView(seed.buffer).setUint32(0, i + 1);
    seed.set(new TextEncoder().encode(options.label.slice(0, 24)), 8);
    return new BenchDevice(coordinator.url, `${options.label}-${i}`, new NativeSigner(seed));
  });
  for (let start = 0; start < devices.length; start += 1000) {
    const batch = devices.slice(start, start + 1000);
    await coordinator.call({
      cmd: 'register',
      devices: batch.map((d) => ({ deviceId: d.deviceId, publicKey: d.signer.publicKey })),
    });
  }
  return devices;
}

export interface RoundRun {
  accepted: number;
  refused: string[];
  /** Handshakes that failed and were retried. */
  connectRetries: number;
  /** Uploads sent again because their pooled keep-alive socket was closed under them (putBlob). */
  uploadRetries: number;
  /** ms from the first report started to the last ack. */
  elapsedMs: number;
  acceptedPerSecond: number;
  submitAckMs: { p50: number; p99: number };
  reportMs: { p50: number; p99: number };
  /** performance.now() of the last accepted ack. */
  lastAckAt: number;
}

/** Connects and checks in every device, waits for all plans, then has every device report once. */
export async function runReportingRound(options: {
  devices: BenchDevice[];
  blobs: DeltaBlob[];
  taskId: string;
  concurrency: number;
  timeoutMs: number;
  /** Called once every device holds its plan, right before the first upload. */
  onReportingStart?: () => void;
}): Promise<RoundRun> {
  const { devices, blobs, taskId } = options;
  const deadline = Date.now() + options.timeoutMs;
  let connectRetries = 0;
  // A loaded 2-core machine sometimes drops a handshake; a device retries twice, as a real one would.
  const connectWithRetry = async (d: BenchDevice): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await d.connect();
      } catch (error) {
        d.disconnect();
        if (attempt >= 3 || Date.now() > deadline) throw error;
        connectRetries += 1;
        await sleep(500 * attempt);
      }
    }
  };
  const connected = await withConcurrency(devices, 64, deadline, connectWithRetry);
  const failedConnect = connected.flatMap((r) =>
    r?.status === 'fulfilled' ? [] : [r === undefined ? 'not started' : String(r.reason)],
  );
  if (failedConnect.length > 0)
    throw new Error(`${failedConnect.length} devices could not connect, e.g. ${failedConnect[0] ?? ''}`);
  const checkins = await withConcurrency(devices, 64, deadline, (d) => d.checkIn(taskId));
  const notWaiting = checkins.filter((r) => r?.status !== 'fulfilled' || !r.value.ok).length;
  if (notWaiting > 0) throw new Error(`${notWaiting} devices were not admitted to the round`);
  while (devices.some((d) => !d.plans.some((p) => p.taskId === taskId))) {
    if (Date.now() > deadline) throw new Error('not every device received a round plan');
    await sleep(20);
  }
  options.onReportingStart?.();
  const retriesBefore = uploadRetries;
  const t0 = performance.now();
  const reports = await withConcurrency(devices, options.concurrency, deadline, (d, i) => {
    const plan = d.plans.find((p) => p.taskId === taskId) as RoundPlan;
    return d.report(plan, blobs[i % blobs.length] as DeltaBlob);
  });
  const ok = reports.flatMap((r) => (r?.status === 'fulfilled' && r.value.ack.ok ? [r.value] : []));
  const refused = reports.flatMap((r) =>
    r === undefined
      ? ['not started (time budget)']
      : r.status === 'rejected'
        ? [String(r.reason)]
        : r.value.ack.ok
          ? []
          : [`${r.value.ack.error.code}: ${r.value.ack.error.message}`],
  );
  const lastAckAt = Math.max(...ok.map((r) => r.ackedAt));
  const elapsedMs = lastAckAt - t0;
  const submit = ok.map((r) => r.submitMs);
  const report = ok.map((r) => r.reportMs);
  return {
    accepted: ok.length,
    refused,
    connectRetries,
    uploadRetries: uploadRetries - retriesBefore,
    elapsedMs,
    acceptedPerSecond: ok.length / (elapsedMs / 1000),
    submitAckMs: { p50: percentile(submit, 50), p99: percentile(submit, 99) },
    reportMs: { p50: percentile(report, 50), p99: percentile(report, 99) },
    lastAckAt,
  };
}
