import { PROTOCOL_VERSION, sha256Hex, type RoundPlan, type UpdateMetadata } from '@flotilla/protocol';

/**
 * The metadata a protocol-level device (the tests' and the bench's) sends for `bytes` as its
 * update in `plan`: the real ids, nonce, digest and size, with stand-in training telemetry (one
 * 10 ms step on cpu), since these devices do not train.
 */
export function standInUpdateMetadata(options: {
  plan: RoundPlan;
  deviceId: string;
  bytes: Uint8Array;
  numExamples: number;
  reportedNorm: number;
  /** SHA-256 of `bytes` when the caller has it already; computed otherwise. */
  blobDigest?: string;
}): UpdateMetadata {
  const { plan, bytes, numExamples } = options;
  return {
    protocolVersion: PROTOCOL_VERSION,
    taskId: plan.taskId,
    roundId: plan.roundId,
    nonce: plan.nonce,
    deviceId: options.deviceId,
    blobDigest: options.blobDigest ?? sha256Hex(bytes),
    blobBytes: bytes.length,
    adapterVersion: plan.adapter.version,
    numExamples,
    reportedNorm: options.reportedNorm,
    clipped: false,
    quantization: 'none',
    telemetry: {
      trainingMs: 10,
      steps: 1,
      examples: numExamples,
      stepsPerSecond: 100,
      bytesUp: bytes.length,
      bytesDown: 0,
      estimatedEnergyJ: 0.1,
      backend: 'cpu',
    },
    createdAt: Date.now(),
  };
}
