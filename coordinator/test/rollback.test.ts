import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SIGNING_DOMAINS,
  SignedManifestSchema,
  decodeFloat32Tensors,
  toBase64,
  verifyPayload,
  type TaskDefinition,
} from '@flotilla/protocol';
import { promoteAdapter } from '../src/shared/promotion/promote-adapter.js';
import { defaultRoundLogPath } from '../src/shared/round-log/index.js';
import { registerWorkerTask, startTestCoordinator, type TestCoordinator } from './support/index.js';

const TOKEN = 'operator-token-for-tests-0123456789';
const BIAS = 'base_model.model.dense.bias';

let test: TestCoordinator;
let task: TaskDefinition;

function adapterOf(value: number) {
  return new Map([[BIAS, { shape: [3], values: Float32Array.from([value, value, value]) }]]);
}

async function promote(version: number, value: number, parentValue: number) {
  const { coordinator } = test;
  return promoteAdapter({
    task,
    parentVersion: version - 1,
    parentAdapter: adapterOf(parentValue),
    adapter: adapterOf(value),
    roundId: `${task.taskId}:${version}`,
    aggregation: { strategy: 'fedavg', loraRule: 'fedit', participants: 2 },
    metrics: { holdoutAccuracy: 0.5 + version / 10 },
    audit: { decision: 'promote', reasons: ['all checks passed'] },
    privacy: null,
    rollbackOf: null,
    createdAt: 1_000 * version,
    blobs: coordinator.blobs,
    registry: coordinator.adapters,
    signingKey: coordinator.coordinatorKey,
  });
}

function rollback(body: unknown, token: string | null = TOKEN) {
  return fetch(`${test.coordinator.url}/api/admin/tasks/${task.taskId}/rollback`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
}

beforeAll(async () => {
  test = await startTestCoordinator();
  const signed = await registerWorkerTask(
    { blobs: test.coordinator.blobs, tasks: test.coordinator.tasks },
    {
      taskId: 'rollback',
      adapter: { mode: 'bias', targetModules: ['dense'], r: 1, alpha: 1, seed: 1 },
      modules: { dense: { in: 4, out: 3 } },
    },
  );
  task = signed.task;
  await promote(1, 1, 0);
  await promote(2, 5, 1);
});

afterAll(async () => {
  await test.stop();
});

describe('adapter rollback', () => {
  it('refuses without the operator token, and refuses a rollback to the latest version', async () => {
    expect((await rollback({ toVersion: 1, reason: 'x' }, null)).status).toBe(401);
    const latest = await rollback({ toVersion: 2, reason: 'x' });
    expect(latest.status).toBe(400);
    expect(((await latest.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST');
  });

  it('promotes the old content as a new signed version and logs it', async () => {
    const response = await rollback({ toVersion: 1, reason: 'v2 regressed on the holdout' });
    expect(response.status).toBe(201);
    const signed = SignedManifestSchema.parse(await response.json());
    const { manifest } = signed;
    expect(manifest).toMatchObject({ version: 3, parentVersion: 2, rollbackOf: 1, roundId: null });
    expect(manifest.audit).toEqual({ decision: 'rollback', reasons: ['v2 regressed on the holdout'] });
    const v1 = await test.coordinator.adapters.getManifest(task.taskId, 1);
    expect(manifest.adapter.f32.digest).toBe(v1?.manifest.adapter.f32.digest);
    const key = toBase64(test.coordinator.coordinatorKey.publicKey);
    expect(verifyPayload(SIGNING_DOMAINS.manifest, manifest, signed.signature, key)).toBe(true);
    // The delta leads devices on v2 back to v1's content: 1 − 5 = −4.
    const deltaBytes = await test.coordinator.blobs.get(manifest.delta?.f32.digest ?? '');
    expect(
      Array.from(decodeFloat32Tensors(deltaBytes ?? new Uint8Array()).tensors.get(BIAS)?.values ?? []),
    ).toEqual([-4, -4, -4]);
    expect(await test.coordinator.adapters.listVersions(task.taskId)).toEqual([1, 2, 3]);
    const log = readFileSync(defaultRoundLogPath(test.stateDir), 'utf8');
    expect(log).toContain('"type":"rollback"');
    expect(log).toContain('"rollbackOf":1');
  });
});
