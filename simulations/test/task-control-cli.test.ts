import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRedisUrl } from '../../test-support/redis.js';
import { createTestTask, flotilla, startTestCoordinator, type TestCoordinator } from './support/index.js';

// `flotilla tasks pause|resume|stop|archive` against a running coordinator, as an operator types
// them: the coordinator from FLOTILLA_URL, the token from FLOTILLA_OPERATOR_TOKEN.

describe('flotilla tasks pause, resume, stop, archive', () => {
  let tc: TestCoordinator;
  let env: Record<string, string>;

  beforeAll(async () => {
    tc = await startTestCoordinator();
    await createTestTask(tc.coordinator);
    env = {
      FLOTILLA_URL: tc.coordinator.url,
      FLOTILLA_OPERATOR_TOKEN: 'operator-token-for-tests-0123456789',
    };
  });
  afterAll(async () => {
    await tc.stop();
  });

  it('moves the task and prints its status; a move its status does not allow exits 2, naming it', async () => {
    const paused = await flotilla(
      ['tasks', 'pause', 'test-task', '--reason', 'new data next week', '--json'],
      env,
    );
    expect(paused.code).toBe(0);
    expect(JSON.parse(paused.stdout)).toMatchObject({
      taskId: 'test-task',
      status: 'paused',
      reason: 'new data next week',
    });
    const resumed = await flotilla(['tasks', 'resume', 'test-task'], env);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/^status\s+active$/m);
    const again = await flotilla(['tasks', 'resume', 'test-task'], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('resume applies to a task that is paused; this one is active');
    expect((await flotilla(['tasks', 'archive', 'test-task', '--json'], env)).code).toBe(0);
    // An unknown name is bad input, like every other (README, "Exit codes").
    const missing = await flotilla(['tasks', 'stop', 'nosuch'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('NOT_FOUND: task nosuch not found');
    expect(await tc.coordinator.rounds.current('test-task')).toMatchObject({ state: 'ABANDONED' });
  });

  it('audit export takes --prefix, and fails naming the prefixes that hold a log when it has none', async () => {
    const out = join(tc.stateDir, 'exported.jsonl');
    const redis = { REDIS_URL: testRedisUrl() };
    const { prefix } = tc.coordinator;
    const exported = await flotilla(['audit', 'export', '--prefix', prefix, '--out', out], redis);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toMatch(/^exported [1-9]\d* round-log lines \(records and tree heads\) to /);
    expect(readFileSync(out, 'utf8')).toContain('"type":"task.control"');
    const wrong = await flotilla(['audit', 'export', '--prefix', `${prefix}-typo`, '--out', out], redis);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toContain(`no round log under prefix "${prefix}-typo"`);
    expect(wrong.stdout).toContain(prefix);
    const help = await flotilla(['audit', 'export', '--help']);
    expect(help.stdout).toContain('--prefix <prefix>');
    for (const action of ['pause', 'resume', 'stop', 'archive']) {
      const text = (await flotilla(['tasks', action, '--help'])).stdout;
      expect(text).toContain('FLOTILLA_URL');
      expect(text).toContain('FLOTILLA_OPERATOR_TOKEN');
    }
  });
});
