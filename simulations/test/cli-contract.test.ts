// The promises every `flotilla` command keeps (README, "Exit codes"): usage errors exit 2 and say
// what is wrong, unknown names are refused and listed rather than ignored, misspelt fields are
// errors, output to a reader that leaves early ends quietly, and times are shown as dates.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import { listBuiltinScenarios } from '../src/scenario/load.js';
import { BIN, flotilla, startCliCoordinator } from './support/index.js';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-contract-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Nothing a person should see after a failure: a stack trace or a raw EPIPE. */
const NO_STACK = /EPIPE|\n\s+at |node:internal/;

describe('flotilla CLI contract', () => {
  it('usage errors exit 2 and say what is wrong', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['nosuch'], /unknown command 'nosuch'/],
      [['keys', 'show', '--bogus', 'x'], /unknown option '--bogus'/],
      [['device'], /required option '--task <id>' not specified/],
      [['keys', 'show'], /missing required argument 'path'/],
      [['audit'], /Usage: flotilla audit/],
      [
        [
          'privacy',
          'noise',
          '--target-epsilon',
          'x',
          '--sampling-rate',
          '1',
          '--steps',
          '1',
          '--delta',
          '0.1',
        ],
        /--target-epsilon: expected a number > 0, got "x"/,
      ],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await flotilla(args);
      expect({ args, code }).toEqual({ args, code: 2 });
      expect(stderr).toMatch(message);
      expect(stderr).not.toMatch(NO_STACK);
    }
    for (const args of [['--help'], ['device', '--help'], ['help', 'audit']]) {
      const { code, stdout } = await flotilla(args);
      expect({ args, code }).toEqual({ args, code: 0 });
      expect(stdout).toContain('Usage: flotilla');
    }
  });

  it('output to a reader that has left (`| head`) ends quietly', async () => {
    const args = [
      'privacy',
      'epsilon',
      '--sampling-rate',
      '0.01',
      '--noise-multiplier',
      '1.1',
      '--steps',
      '100',
      '--delta',
      '1e-5',
    ];
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    // The reader goes away before the command writes anything: every write meets a closed pipe.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('an unknown built-in scenario is refused with the list of built-in names', async () => {
    const { code, stderr } = await flotilla(['simulate', 'demo-typo', '--out', join(dir, 'out')]);
    expect(code).toBe(2);
    expect(stderr).toContain('no built-in scenario "demo-typo"');
    for (const name of listBuiltinScenarios()) expect(stderr).toContain(name);
  });

  it('a misspelt field in a scenario or a task file is an error naming it', async () => {
    const scenario = join(dir, 'typo-scenario.yaml');
    writeFileSync(scenario, 'name: typo\nstrategy: { name: krum, byzantin: 1 }\n');
    const simulate = await flotilla(['simulate', scenario, '--out', join(dir, 'typo-out')]);
    expect(simulate.code).toBe(2);
    expect(simulate.stderr).toContain('strategy: Unrecognized key: "byzantin"');

    const task = join(dir, 'typo-task.yaml');
    writeFileSync(
      task,
      'taskId: typo\nadapter: { mode: lora, targetModules: [hidden] }\nrounds: { goalCount: 2, training: { learningRate: 0.1, epoch: 2 } }\npolicy: { clipNorm: 1 }\n',
    );
    const create = await flotilla(['tasks', 'create', task, '--base', join(dir, 'absent.bundle')]);
    expect(create.code).toBe(2);
    expect(create.stderr).toContain('rounds.training: Unrecognized key: "epoch"');
    expect(create.stderr).not.toMatch(NO_STACK);
  });

  it('simulate --json prints the run as one JSON document, progress on stderr', async () => {
    const scenario = join(dir, 'tiny.yaml');
    writeFileSync(
      scenario,
      [
        'name: tiny',
        'devices: 2',
        'devicesPerRound: 2',
        'minReports: 1',
        'rounds: 1',
        'partition: { scheme: iid, maxExamplesPerDevice: 40 }',
        'adapter: { mode: ffa-lora, r: 2, alpha: 4, targetModules: [hidden] }',
        'training: { maxSteps: 2, batchSize: 16, learningRate: 0.03 }',
      ].join('\n'),
    );
    const args = ['simulate', scenario, '--out', join(dir, 'tiny-out'), '--threads', '1', '--json'];
    const { code, stdout, stderr } = await flotilla([...args, '--redis-url', testRedisUrl()], {}, 230_000);
    expect(code, stderr).toBe(0);
    const run = JSON.parse(stdout) as {
      scenario: string;
      rounds: Array<{ round: number; decision: string }>;
      report: { json: string };
      roundLog: { verified: boolean };
    };
    expect(run.scenario).toBe('tiny');
    expect(run.rounds.map((r) => r.round)).toEqual([0, 1]);
    expect(run.roundLog.verified).toBe(true);
    expect(run.report.json).toContain('tiny-out');
    expect(stderr).toContain('simulating "tiny"');
  }, 240_000);

  describe('against a running coordinator', () => {
    const token = 'operator-token-for-the-contract-test';
    let coordinator: Awaited<ReturnType<typeof startCliCoordinator>>;
    let env: Record<string, string>;

    beforeAll(async () => {
      coordinator = await startCliCoordinator(
        ['--state-dir', join(dir, 'coord'), '--prefix', uniquePrefix('contract')],
        { REDIS_URL: testRedisUrl(), FLOTILLA_OPERATOR_TOKEN: token },
      );
      env = { FLOTILLA_URL: coordinator.url, FLOTILLA_OPERATOR_TOKEN: token };
    });
    afterAll(async () => {
      await coordinator.stop();
    });

    it('an unknown task exits 2 with one message: device, adapters list, adapters show', async () => {
      const issued = await flotilla(['devices', 'token', '--json'], env);
      const enrollToken = (JSON.parse(issued.stdout) as { token: string }).token;
      const device = await flotilla(
        [
          'device',
          '--task',
          'nosuch',
          '--device-id',
          'contract-1',
          '--key-file',
          join(dir, 'device.key'),
          '--enroll-token',
          enrollToken,
          '--data',
          'synthetic',
        ],
        env,
      );
      expect(device.code).toBe(2);
      expect(device.stderr.trim()).toBe(
        'flotilla: NOT_FOUND: task "nosuch" is not registered on this coordinator',
      );
      for (const args of [
        ['adapters', 'list', '--task', 'nope'],
        ['adapters', 'show', '--task', 'nope', 'latest'],
      ]) {
        const { code, stderr } = await flotilla(args, env);
        expect({ args, code }).toEqual({ args, code: 2 });
        expect(stderr).toContain('task "nope" is not registered');
      }
    });

    it('shows times as ISO 8601 dates, and as epoch ms in --json', async () => {
      const before = Date.now();
      const human = await flotilla(['devices', 'token', '--ttl-ms', '60000'], env);
      const expiresAt = /expiresAt\s+(\S+)/.exec(human.stdout)?.[1] ?? '';
      expect(expiresAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Date.parse(expiresAt) - before).toBeGreaterThanOrEqual(60_000);
      expect(Date.parse(expiresAt) - before).toBeLessThan(60_000 + 60_000);
      const json = JSON.parse((await flotilla(['devices', 'token', '--json'], env)).stdout) as {
        expiresAt: unknown;
      };
      expect(typeof json.expiresAt).toBe('number');
    });
  });
});
