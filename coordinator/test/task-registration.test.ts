import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlotillaError, sha256Hex, type TaskDefinitionInput } from '@flotilla/protocol';
import { registerTask } from '../src/server/register-task.js';
import { TaskRegistry } from '../src/shared/task-registry.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { testRedisUrl } from '../../test-support/redis.js';
import { startTestCoordinator, testTaskDefinition, waitFor, type TestCoordinator } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

function taskInput(taskId: string, digest: string, bytes: number): TaskDefinitionInput {
  return testTaskDefinition(
    { digest, bytes },
    {
      taskId,
      rounds: {
        goalCount: 2,
        minReports: 1,
        selectionTimeoutMs: 30_000,
        reportingDeadlineMs: 60_000,
        retryAfterMs: 5_000,
      },
    },
  );
}

describe('task registration', () => {
  let tc: TestCoordinator;
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  const base = new Uint8Array(randomBytes(128));
  const digest = sha256Hex(base);

  beforeAll(async () => {
    tc = await startTestCoordinator();
    await tc.coordinator.blobs.put(digest, base);
  });
  afterAll(async () => {
    await tc.stop();
    redis.disconnect();
  });

  it('refuses a task without module shapes, with a module outside the policy, or without its base blob', async () => {
    const codeOf = (p: Promise<unknown>) =>
      p.then(
        () => 'OK',
        (e: unknown) => (FlotillaError.is(e) ? e.code : 'THROWN'),
      );
    const noShapes = { ...taskInput('a', digest, base.length), moduleShapes: {} };
    expect(await codeOf(tc.coordinator.createTask(noShapes))).toBe('BAD_REQUEST');
    const outside = taskInput('b', digest, base.length);
    outside.policy = { ...outside.policy, allowedModules: ['other'] };
    expect(await codeOf(tc.coordinator.createTask(outside))).toBe('BAD_REQUEST');
    expect(await codeOf(tc.coordinator.createTask(taskInput('c', 'e'.repeat(64), 10)))).toBe('BLOB_MISSING');
    expect(await codeOf(tc.coordinator.createTask(taskInput('d', digest, base.length + 1)))).toBe(
      'BAD_REQUEST',
    );
    expect(await tc.coordinator.tasks.listTasks()).toEqual([]);
  });

  it('refuses a misspelt field, naming it, instead of using the default in its place', async () => {
    const typo = taskInput('typo', digest, base.length);
    const strategy = { name: 'krum', byzantin: 1 } as unknown as TaskDefinitionInput['policy']['strategy'];
    typo.policy = { ...typo.policy, strategy };
    await expect(tc.coordinator.createTask(typo)).rejects.toThrow(
      'invalid task: policy.strategy: Unrecognized key: "byzantin"',
    );
  });

  it('refuses a DP task whose budget cannot pay for one round', async () => {
    // One unamplified round at z = 4.530877117 costs ε = 1 at δ = 1e-6 (TF Privacy's reference).
    const dpTask = (epsilonBudget: number) => {
      const task = taskInput(`dp-${String(epsilonBudget).replace('.', '-')}`, digest, base.length);
      task.policy = {
        ...task.policy,
        dp: { noiseMultiplier: 4.530877117, delta: 1e-6, epsilonBudget },
      };
      return task;
    };
    await expect(tc.coordinator.createTask(dpTask(0.99))).rejects.toThrow(
      'policy.dp: one round at noise multiplier 4.530877117 costs epsilon 1 at delta 0.000001, more than the budget 0.99; raise noiseMultiplier or epsilonBudget',
    );
    expect((await tc.coordinator.createTask(dpTask(1.01))).task.policy.dp?.epsilonBudget).toBe(1.01);
  });

  it('opens the first round of a task registered by another process (the CLI path), once', async () => {
    // A separate registry on its own connection, as `flotilla tasks create` would use.
    const cli = new TaskRegistry({
      redis,
      prefix: tc.coordinator.prefix,
      signingKey: tc.coordinator.coordinatorKey,
    });
    const signed = await registerTask({
      tasks: cli,
      blobs: tc.coordinator.blobs,
      task: taskInput('cli-task', digest, base.length),
    });
    expect(signed.task.taskId).toBe('cli-task');
    const round = await waitFor(() => tc.coordinator.rounds.current('cli-task'), PATIENCE_MS, 'first round');
    expect(round).toMatchObject({ roundId: 'cli-task:1', state: 'SELECTING', targetSelect: 3, minSelect: 2 });
    await expect(
      registerTask({
        tasks: cli,
        blobs: tc.coordinator.blobs,
        task: taskInput('cli-task', digest, base.length),
      }),
    ).rejects.toThrow(/already exists/);
    const again = await tc.coordinator.rounds.get('cli-task:1');
    expect(again?.nonce).toBe(round.nonce);
  });
});
