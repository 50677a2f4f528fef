// Issue 18: a task definition takes the default of every field that has one, and
// `POST /api/admin/tasks` names each field it refuses (as `flotilla tasks create` does).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuditPolicySchema,
  SIGNING_DOMAINS,
  sha256Hex,
  verifyPayload,
  type SignedTask,
} from '@flotilla/protocol';
import { MODULE, SHAPES, startTestCoordinator, type TestCoordinator } from './support/index.js';

const OPERATOR = 'operator-token-for-tests-0123456789';

describe('task definitions over POST /api/admin/tasks', () => {
  let tc: TestCoordinator;
  const base = new Uint8Array(randomBytes(128));
  const digest = sha256Hex(base);
  const post = async (task: unknown) => {
    const res = await fetch(`${tc.coordinator.url}/api/admin/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' },
      body: JSON.stringify(task),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  /** The fields that have no default: id, base, adapter mode and modules, shapes, goal, rate, clip. */
  const minimal = (taskId: string) => ({
    taskId,
    baseModel: { digest, format: 'tfjs-layers-bundle', bytes: base.length },
    adapter: { mode: 'ffa-lora', targetModules: [MODULE] },
    moduleShapes: { [MODULE]: SHAPES },
    rounds: { goalCount: 10, training: { learningRate: 0.05 } },
    policy: { clipNorm: 1 },
  });

  beforeAll(async () => {
    tc = await startTestCoordinator({ operatorToken: OPERATOR });
    await tc.coordinator.blobs.put(digest, base);
  });
  afterAll(() => tc.stop());

  it('registers a minimal task and signs it with every default written out', async () => {
    const before = Date.now();
    const { status, body } = await post(minimal('minimal'));
    expect(status).toBe(201);
    const signed = body as unknown as SignedTask;
    const { task } = signed;
    expect(task.adapter).toEqual({ mode: 'ffa-lora', targetModules: [MODULE], r: 8, alpha: 8, seed: 0 });
    expect(task.rounds).toMatchObject({
      goalCount: 10,
      overSelection: 1.3,
      minGoalFraction: 0.8,
      // floor(0.8 × 10 / 1.3) = floor(6.15)
      minReports: 6,
      maxRounds: 0,
      maxSteps: 200,
      training: { epochs: 1, batchSize: 32, learningRate: 0.05, fedProxMu: 0, optimizer: 'sgd' },
    });
    expect(task.policy).toMatchObject({
      allowedModules: [MODULE],
      clipNorm: 1,
      // float32 A [8, 4] + B [3, 8] = 56 values = 224 bytes, plus the 64 KiB header allowance
      maxBlobBytes: 224 + 65_536,
      // maxSteps × batchSize
      maxExamplesPerUpdate: 200 * 32,
      weighting: { rule: 'examples' },
      strategy: { name: 'fedavg', byzantine: 0, loraRule: 'fedit' },
      audit: AuditPolicySchema.parse({}),
    });
    expect(task.policy.dp).toBeUndefined();
    expect(task.createdAt).toBeGreaterThanOrEqual(before);
    expect(verifyPayload(SIGNING_DOMAINS.task, task, signed.signature, signed.coordinatorKey)).toBe(true);
  });

  it('names every refused field in the error', async () => {
    const task = minimal('refused');
    const { status, body } = await post({
      ...task,
      rounds: { training: { learningRate: 0.05, fedProxMu: -1 } },
      policy: { clipNorm: 0, audit: { madThreshold: 'high' } },
    });
    expect(status).toBe(400);
    const error = body.error as { code: string; message: string };
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.message).toMatch(/^invalid task: /);
    for (const field of [
      'rounds.goalCount',
      'rounds.training.fedProxMu',
      'policy.clipNorm',
      'policy.audit.madThreshold',
    ])
      expect(error.message).toContain(`${field}: `);
  });

  it('refuses a quorum above the goal, naming rounds.minReports', async () => {
    const task = minimal('quorum');
    const { status, body } = await post({ ...task, rounds: { ...task.rounds, goalCount: 2, minReports: 3 } });
    expect(status).toBe(400);
    expect((body.error as { message: string }).message).toBe(
      'invalid task: rounds.minReports: must be at most rounds.goalCount (2): a round closes once it has goalCount updates',
    );
  });
});
