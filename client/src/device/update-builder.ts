import {
  FlotillaError,
  PROTOCOL_VERSION,
  SIGNING_DOMAINS,
  clipNamedToL2Norm,
  encodeFloat32Tensors,
  fnv1a32,
  globalL2Norm,
  sha256Hex,
  signPayload,
  type RoundPlan,
  type Telemetry,
  type UpdateMetadata,
  type UpdateSubmission,
} from '@flotilla/protocol';
import type { NamedTensors } from '../cache/adapter-tensors.js';
import { createRng } from '../model/seeded-rng.js';
import { quantizeDelta } from '../quantize/int8.js';
import { encodeQuantizedDelta } from '../quantize/wire.js';

export interface BuildUpdateOptions {
  plan: RoundPlan;
  deviceId: string;
  secretKey: Uint8Array;
  delta: NamedTensors;
  numExamples: number;
  /** Telemetry without `bytesUp`, which is the size of the encoded blob. */
  telemetry: Omit<Telemetry, 'bytesUp'>;
  /**
   * `enforce` (default) clips to `plan.clipNorm`. `off` sends the delta as trained: only for
   * simulating misbehaving devices (the coordinator must refuse them with NORM_EXCEEDED).
   */
  clipping?: 'enforce' | 'off';
  now?: number;
}

export interface BuiltUpdate {
  blob: Uint8Array;
  submission: UpdateSubmission;
  /** Global L2 norm before clipping. */
  rawNorm: number;
}

/**
 * Clips the delta to the plan's global L2 bound, encodes it as safetensors (PEFT names; F32, or
 * int8 with per-tensor `scale:<name>` metadata when the plan asks), hashes it and signs the
 * update metadata in the update domain. Pure (deterministic for a given `now`).
 */
export function buildUpdate(options: BuildUpdateOptions): BuiltUpdate {
  const { plan, delta } = options;
  if (options.numExamples < 1 || !Number.isInteger(options.numExamples))
    throw new FlotillaError(
      'BAD_REQUEST',
      `numExamples must be a positive integer, got ${options.numExamples}`,
    );
  const names = [...delta.keys()];
  const values = new Map(names.map((name) => [name, delta.get(name)?.values ?? new Float32Array(0)]));
  for (const [name, v] of values)
    for (const x of v)
      if (!Number.isFinite(x)) throw new FlotillaError('NON_FINITE', `delta ${name} is not finite`);
  const rawNorm = globalL2Norm(values.values());
  let sent: NamedTensors = delta;
  let clipped = false;
  let reportedNorm = rawNorm;
  const clipping = options.clipping ?? 'enforce';
  if (clipping === 'enforce') {
    const result = clipNamedToL2Norm(values, plan.clipNorm);
    clipped = result.clipped;
    sent = new Map(
      names.map((name) => [
        name,
        {
          shape: [...(delta.get(name)?.shape ?? [])],
          values: result.tensors.get(name) ?? new Float32Array(0),
        },
      ]),
    );
    reportedNorm = globalL2Norm([...sent.values()].map((t) => t.values));
  }
  let blob: Uint8Array;
  if (plan.quantization === 'int8') {
    // Stochastic rounding seeded per device and round: reproducible, and unbiased on average.
    const quantized = quantizeDelta({
      tensors: sent,
      clipNorm: clipping === 'enforce' ? plan.clipNorm : Number.MAX_VALUE,
      rng: createRng(fnv1a32(`${plan.roundId}/${plan.nonce}/${options.deviceId}`)),
    });
    blob = encodeQuantizedDelta(quantized.delta, { 'flotilla.round': plan.roundId });
    reportedNorm = quantized.norm;
  } else {
    blob = encodeFloat32Tensors(sent, { format: 'pt', 'flotilla.round': plan.roundId });
  }
  if (blob.byteLength > plan.budget.maxUploadBytes)
    throw new FlotillaError(
      'BLOB_TOO_LARGE',
      `update is ${blob.byteLength} bytes, the plan allows ${plan.budget.maxUploadBytes}`,
    );
  const metadata: UpdateMetadata = {
    protocolVersion: PROTOCOL_VERSION,
    taskId: plan.taskId,
    roundId: plan.roundId,
    nonce: plan.nonce,
    deviceId: options.deviceId,
    blobDigest: sha256Hex(blob),
    blobBytes: blob.byteLength,
    adapterVersion: plan.adapter.version,
    numExamples: options.numExamples,
    reportedNorm,
    clipped,
    quantization: plan.quantization,
    telemetry: { ...options.telemetry, bytesUp: blob.byteLength },
    createdAt: options.now ?? Date.now(),
  };
  return {
    blob,
    rawNorm,
    submission: { metadata, signature: signPayload(SIGNING_DOMAINS.update, metadata, options.secretKey) },
  };
}
