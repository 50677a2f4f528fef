import { TaskDefinitionSchema, type AdapterSpec, type TaskDefinition } from '@flotilla/protocol';

/**
 * A task on one dense module `d` for unit tests of update validation and the drift audit: one
 * report makes a round, FedAvg, clip bound 5, blobs up to 1000 bytes.
 */
export function moduleDTask(options: {
  adapter: AdapterSpec;
  shape: { in: number; out: number };
  /** The base model's blob; default a stand-in digest of 1 byte (nothing reads it). */
  base?: { digest: string; bytes: number };
}): TaskDefinition {
  const base = options.base ?? { digest: 'a'.repeat(64), bytes: 1 };
  return TaskDefinitionSchema.parse({
    taskId: 't',
    baseModel: { digest: base.digest, format: 'tfjs-layers-bundle', bytes: base.bytes },
    adapter: options.adapter,
    moduleShapes: { d: options.shape },
    rounds: {
      goalCount: 1,
      minReports: 1,
      training: { epochs: 1, batchSize: 1, learningRate: 0.1, fedProxMu: 0, optimizer: 'sgd' },
    },
    policy: {
      allowedModules: ['d'],
      clipNorm: 5,
      maxBlobBytes: 1000,
      strategy: { name: 'fedavg' },
      audit: {},
    },
    createdAt: 0,
  });
}
