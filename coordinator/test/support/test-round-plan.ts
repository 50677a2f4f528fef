import type { RoundPlan } from '@flotilla/protocol';

/**
 * A valid round plan for `roundId` (`<taskId>:<n>`), for tests that store rounds in Redis by hand:
 * LoRA rank 2 on `dense`, clip 1, `maxUploadBytes` (default 4096) and `deadline` (epoch ms,
 * default far ahead) as given.
 */
export function testRoundPlan(
  roundId: string,
  options: { maxUploadBytes?: number; deadline?: number } = {},
): RoundPlan {
  const at = roundId.lastIndexOf(':');
  return {
    roundId,
    taskId: roundId.slice(0, at),
    roundNumber: Number(roundId.slice(at + 1)),
    nonce: 'ab'.repeat(32),
    baseModelDigest: 'f'.repeat(64),
    adapter: {
      spec: { mode: 'lora', targetModules: ['dense'], r: 2, alpha: 4, seed: 1 },
      version: 0,
      digest: null,
    },
    training: { epochs: 1, batchSize: 32, learningRate: 0.1, fedProxMu: 0, optimizer: 'sgd' },
    budget: { maxSteps: 10, maxSeconds: 60, maxUploadBytes: options.maxUploadBytes ?? 4096 },
    clipNorm: 1,
    quantization: 'none',
    validationTolerance: null,
    deadline: options.deadline ?? 2_000_000_000_000,
  };
}
