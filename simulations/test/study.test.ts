import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testRedisUrl } from '../../test-support/redis.js';
import { BIN, flotilla } from './support/index.js';

// Repeats and sweeps through the real CLI, on a scenario small enough to run a dozen times.
const dir = mkdtempSync(join(tmpdir(), 'flotilla-study-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const scenario = join(dir, 'tiny.yaml');
writeFileSync(
  scenario,
  [
    'name: tiny',
    'devices: 3',
    'devicesPerRound: 2',
    'minReports: 1',
    'rounds: 2',
    'partition: { scheme: iid, maxExamplesPerDevice: 40 }',
    'adapter: { mode: ffa-lora, r: 2, alpha: 4, targetModules: [hidden] }',
    'training: { maxSteps: 2, batchSize: 16, learningRate: 0.05 }',
    // One base model for every seed: the seeds then move the partition, sampling and training.
    'seeds: { model: 1, data: 1 }',
  ].join('\n'),
);
const common = ['--threads', '1', '--no-progress', '--redis-url'];

interface Interval {
  mean: number;
  low: number | null;
  high: number | null;
}
interface Metrics {
  runs: Array<{ metrics: Array<{ round: number; accuracy: number; bytesUp: number }> }>;
}
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

describe('flotilla simulate --repeats', () => {
  it('reports 95% intervals that contain every single-seed run, the same runs as --seed gives', async () => {
    const out = join(dir, 'repeats');
    const repeats = await flotilla(
      [
        'simulate',
        scenario,
        '--repeats',
        '3',
        '--target',
        '0.5',
        '--centralized',
        '--out',
        out,
        ...common,
        testRedisUrl(),
      ],
      {},
      400_000,
    );
    expect(repeats.code, repeats.stderr).toBe(0);
    const study = readJson<{
      cells: Array<{
        label: string;
        seeds: number[];
        rounds: Array<{ round: number; values: { accuracy: Interval; bytesUp: Interval } }>;
        runs: { finalAccuracy: Interval };
      }>;
    }>(join(out, 'study.json'));
    const cell = study.cells[0];
    expect(cell?.seeds).toEqual([1, 2, 3]);
    // Beside the federated runs, their centralized baselines for each seed, without and with the clip.
    expect(study.cells.map((c) => [c.label, c.seeds.length])).toEqual([
      ['tiny', 3],
      ['tiny: centralized, same steps', 3],
      ['tiny: centralized, same steps, clipped to 1', 3],
    ]);
    const runs = [1, 2, 3].map(
      (seed) =>
        readJson<Metrics>(join(out, 'runs', 'tiny', `seed-${seed}`, 'metrics.json')).runs[0]?.metrics ?? [],
    );
    expect(runs.map((r) => r.length)).toEqual([3, 3, 3]);
    for (const round of cell?.rounds ?? []) {
      const values = runs.map((r) => r.find((m) => m.round === round.round)?.accuracy ?? Number.NaN);
      const { mean, low, high } = round.values.accuracy;
      expect(mean).toBeCloseTo(values.reduce((a, b) => a + b, 0) / 3, 12);
      for (const value of values) {
        expect(value).toBeGreaterThanOrEqual(low ?? Number.NaN);
        expect(value).toBeLessThanOrEqual(high ?? Number.NaN);
      }
    }
    // The seeds really differ (else the intervals would be trivially zero-width).
    expect(new Set(runs.map((r) => r.at(-1)?.accuracy)).size).toBeGreaterThan(1);
    // A single run with --seed 2 is the repeats' seed-2 run.
    const single = await flotilla(
      [
        'simulate',
        scenario,
        '--seed',
        '2',
        '--centralized',
        '--json',
        '--out',
        join(dir, 'single'),
        ...common,
        testRedisUrl(),
      ],
      {},
      200_000,
    );
    expect(single.code, single.stderr).toBe(0);
    const parsed = JSON.parse(single.stdout) as {
      rounds: Array<{ accuracy: number }>;
      centralized: Array<{ label: string; steps: number; examples: number; clipNorm: number | null }>;
    };
    const rounds = parsed.rounds;
    // The centralized baselines take the fleet's steps: 2 rounds × 2 devices × ⌈32/16⌉, on 3 × 32 examples.
    expect(parsed.centralized.map((c) => [c.steps, c.examples, c.clipNorm])).toEqual([
      [8, 96, null],
      [8, 96, 1],
    ]);
    expect(rounds.map((m) => m.accuracy)).toEqual(runs[1]?.map((m) => m.accuracy));
    const final = cell?.runs.finalAccuracy;
    expect(rounds.at(-1)?.accuracy).toBeGreaterThanOrEqual(final?.low ?? Number.NaN);
    expect(rounds.at(-1)?.accuracy).toBeLessThanOrEqual(final?.high ?? Number.NaN);
    // The report shows the intervals and the band.
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).toContain('rounds to ≥ 50.0%');
    expect(report).toMatch(/\| tiny \| 1, 2, 3 \| .* \| \d+\.\d% ± \d+\.\d \|/);
    expect(readFileSync(join(out, 'accuracy.svg'), 'utf8')).toContain('<polygon class="band"');
  }, 600_000);
});

describe('flotilla sweep', () => {
  it('resumes after being killed: finished runs are kept, the rest run, one report compares them', async () => {
    const sweep = join(dir, 'sweep.yaml');
    writeFileSync(
      sweep,
      [
        'name: lr',
        'scenario: tiny.yaml',
        'seeds: [1]',
        'target: 0.5',
        'axes:',
        '  - field: training.learningRate',
        '    values: [0.01, 0.1]',
      ].join('\n'),
    );
    const out = join(dir, 'sweep');
    const first = join(out, 'runs', 'learningrate-0.01', 'seed-1', 'outcome.json');
    const second = join(out, 'runs', 'learningrate-0.1', 'seed-1', 'outcome.json');
    // A sweep in its own process group, killed (SIGKILL, no clean-up) once its first run is done.
    const child = spawn(process.execPath, [BIN, 'sweep', sweep, '--out', out, ...common, testRedisUrl()], {
      detached: true,
      stdio: 'ignore',
    });
    const pid = child.pid ?? 0;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const deadline = Date.now() + 300_000;
    while (!existsSync(first) && child.exitCode === null && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 200));
    expect(existsSync(first)).toBe(true);
    process.kill(-pid, 'SIGKILL');
    await exited;
    expect(existsSync(second)).toBe(false);
    const firstWritten = statSync(first).mtimeMs;

    const resumed = await flotilla(['sweep', sweep, '--out', out, ...common, testRedisUrl()], {}, 300_000);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain('[1/2] learningRate=0.01, seed 1: done already');
    expect(resumed.stderr).toContain('[2/2] learningRate=0.1, seed 1: running');
    expect(resumed.stdout).toContain('1 run(s) now, 1 found done');
    expect(statSync(first).mtimeMs).toBe(firstWritten);
    expect(existsSync(second)).toBe(true);
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).toContain('| learningRate=0.01 | 1 |');
    expect(report).toContain('| learningRate=0.1 | 1 |');
    expect(report).toContain('2 of 2 done');
  }, 600_000);

  it('refuses a bad sweep file or a bad value, naming the field, before running anything', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'name: bad\nscenario: tiny.yaml\naxes: []\n');
    const empty = await flotilla(['sweep', bad, '--out', join(dir, 'bad')]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('axes: ');
    writeFileSync(
      bad,
      'name: bad\nscenario: tiny.yaml\naxes:\n  - field: training.epochs\n    values: [1, -2]\n',
    );
    const value = await flotilla(['sweep', bad, '--out', join(dir, 'bad')]);
    expect(value.code).toBe(2);
    expect(value.stderr).toContain('configuration "epochs=-2"');
    expect(value.stderr).toContain('training.epochs: ');
    expect(existsSync(join(dir, 'bad', 'runs'))).toBe(false);
  });
});
