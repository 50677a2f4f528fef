import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeDeltaFile, generateSigningKeyPair } from '@flotilla/protocol';
import { AdapterRegistry } from '../src/shared/adapter-registry.js';
import { LocalDirBlobStore } from '../src/shared/blob-store/index.js';
import { promoteAdapter } from '../src/shared/promotion/promote-adapter.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { TaskRegistry } from '../src/shared/task-registry.js';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import { registerWorkerTask } from './support/index.js';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-int8-'));
const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
afterAll(() => {
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe('int8 promotion artifacts', () => {
  it('are written when the task quantizes, with per-tensor scale max|x|/127', async () => {
    const prefix = uniquePrefix('int8');
    const signingKey = generateSigningKeyPair();
    const blobs = new LocalDirBlobStore({ dir });
    const tasks = new TaskRegistry({ redis, prefix, signingKey });
    const signed = await registerWorkerTask(
      { blobs, tasks },
      {
        taskId: 'int8',
        adapter: { mode: 'bias', targetModules: ['dense'], r: 1, alpha: 1, seed: 1 },
        modules: { dense: { in: 2, out: 4 } },
      },
    );
    const task = { ...signed.task, rounds: { ...signed.task.rounds, quantization: 'int8' as const } };
    const name = 'base_model.model.dense.bias';
    const adapter = new Map([[name, { shape: [4], values: Float32Array.from([0.5, -1.27, 0.01, 0]) }]]);
    const promotion = await promoteAdapter({
      task,
      parentVersion: 0,
      parentAdapter: new Map([[name, { shape: [4], values: new Float32Array(4) }]]),
      adapter,
      roundId: 'int8:1',
      aggregation: { strategy: 'fedavg', loraRule: 'fedit', participants: 1 },
      metrics: {},
      audit: { decision: 'promote', reasons: [] },
      privacy: null,
      rollbackOf: null,
      createdAt: 1,
      blobs,
      registry: new AdapterRegistry({ redis, prefix }),
      signingKey,
    });
    const int8 = promotion.signed.manifest.adapter.int8;
    expect(int8).toBeDefined();
    const decoded = decodeDeltaFile((await blobs.get(int8?.digest ?? '')) ?? new Uint8Array());
    expect(decoded.quantization).toBe('int8');
    // scale = 1.27 / 127 = 0.01: 0.5 -> 50, -1.27 -> -127, 0.01 -> 1, 0 -> 0 (within half a step).
    const values = Array.from(decoded.tensors.get(name)?.values ?? []);
    [0.5, -1.27, 0.01, 0].forEach((v, i) =>
      expect(Math.abs((values[i] ?? Number.NaN) - v)).toBeLessThanOrEqual(0.005 + 1e-9),
    );
  });
});
