import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RoundLogFollower } from '@flotilla/coordinator/server';
import { redisOptionsFromUrl } from '@flotilla/coordinator/shared';
import { listBuiltinScenarios, loadScenario, validateScenario } from '../src/scenario/load.js';
import type { Scenario } from '../src/scenario/schema.js';
import { runSimulation } from '../src/runner/run-simulation.js';
import { testRedisUrl } from '../../test-support/redis.js';
import { tempDirs } from '../../test-support/temp-dirs.js';
import { flotilla } from './support/index.js';

// Every built-in scenario's honest log verifies (issue 16, "done when"): each one, shrunk to a few
// devices and two rounds but otherwise as shipped (strategy, LoRA rule, adapter mode, DP,
// attackers, partition, dataset and model), runs on all the real parts; then `flotilla audit
// verify --blobs` passes on its round log, recomputing every aggregate without noise, and the
// dashboard's view of the chain (RoundLogFollower, which the page's BROKEN pill reads) is verified.
// The full-size runs are in docs/results.md.

/** The scenario at test size: 5 devices, all selected, quorum 3, 2 rounds of 2 local steps. */
function shrink(scenario: Scenario): Scenario {
  return validateScenario({
    ...scenario,
    devices: 5,
    devicesPerRound: 5,
    minReports: 3,
    rounds: 2,
    training: { ...scenario.training, maxSteps: 2 },
    partition: {
      ...scenario.partition,
      maxExamplesPerDevice: 40,
      ...(scenario.partition.minPerDevice !== undefined ? { minPerDevice: 5 } : {}),
    },
    data: {
      ...scenario.data,
      ...(scenario.dataset === 'text' ? { textExamplesPerDevice: 40, textPretrainExamples: 300 } : {}),
    },
    model: { ...scenario.model, ...(scenario.dataset === 'text' ? { baseEpochs: 1 } : {}) },
  });
}

const tempDir = tempDirs('flotilla-builtin-');
const cacheDir = tempDir();
const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
afterAll(() => {
  redis.disconnect();
});

describe('every built-in scenario', () => {
  const names = listBuiltinScenarios();

  it('is listed: the scenarios this test runs are the ones `flotilla simulate` offers', () => {
    expect(names).toEqual(
      expect.arrayContaining(['demo', 'iid', 'dp-z1.0', 'attack-krum', 'lora', 'full', 'text']),
    );
  });

  it.each(names)(
    '%s: its honest log verifies with audit verify --blobs, and the dashboard shows it verified',
    async (name) => {
      const scenario = shrink(loadScenario(name));
      const stateDir = tempDir();
      const result = await runSimulation({
        scenario,
        stateDir,
        cacheDir,
        redisUrl: testRedisUrl(),
        threads: 2,
        progress: false,
      });
      const rounds = result.metrics.slice(1);
      expect(rounds.length, name).toBeGreaterThan(0);

      const verify = await flotilla([
        'audit',
        'verify',
        result.roundLogPath,
        '--key',
        result.coordinatorKey,
        '--blobs',
        join(stateDir, 'blobs'),
        '--json',
      ]);
      const verdict = JSON.parse(verify.stdout) as { ok: boolean; problems: unknown[]; recomputed: number };
      expect(verdict.problems, name).toEqual([]);
      expect(verify.code, name).toBe(0);
      // Every aggregation without noise was recomputed from its retained deltas.
      const aggregated = rounds.filter((m) => m.decision !== 'ABANDONED').length;
      if (scenario.dp === undefined && aggregated > 0) expect(verdict.recomputed, name).toBeGreaterThan(0);

      const follower = new RoundLogFollower({ redis, prefix: result.prefix, verifyEveryMs: 0 });
      await follower.refresh();
      const chain = await follower.chainStatus();
      expect(chain.records, name).toBeGreaterThan(0);
      expect(chain.verified, name).toMatchObject({ ok: true, firstBad: null });
    },
    600_000,
  );
});
