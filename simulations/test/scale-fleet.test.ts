import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { redisOptionsFromUrl } from '@flotilla/coordinator/shared';
import { parseScenario } from '../src/scenario/load.js';
import { runSimulation } from '../src/runner/run-simulation.js';
import { testRedisUrl } from '../../test-support/redis.js';
import { tempDirs } from '../../test-support/temp-dirs.js';

// Issue 17: 200 devices ran, 400 and 1,000 hung. Every device of the fleet stayed connected and
// checked in every ~200 ms whether or not the schedule wanted it, so check-in traffic grew with
// the fleet (~2,000 check-ins/s at 1,000 devices) until challenge answers missed their timeout,
// sockets were closed, devices stuck and rounds never filled. Devices that the schedule does not
// pick must cost nothing: they never connect. The run below is the reported size.
const scenario = parseScenario(`
name: scale-1000
seed: 5
dataset: synthetic
data: { syntheticExamples: 20000 }
devices: 1000
devicesPerRound: 10
minReports: 8
rounds: 2
partition: { scheme: iid, maxExamplesPerDevice: 14 }
model: { hidden: 16, baseEpochs: 1 }
adapter: { mode: ffa-lora, r: 2, alpha: 4, targetModules: [hidden, out] }
training: { maxSteps: 2, batchSize: 7, validationTolerance: 100 }
strategy: { name: fedavg, loraRule: ffa }
`);

const tempDir = tempDirs('flotilla-scale-');

/** Devices that opened a session with the coordinator of the run with this key prefix. */
async function devicesThatConnected(prefix: string): Promise<number> {
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));
  try {
    let cursor = '0';
    let count = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:device:*:sessions`, 'COUNT', 1000);
      cursor = next;
      count += keys.length;
    } while (cursor !== '0');
    return count;
  } finally {
    redis.disconnect();
  }
}

describe('a 1,000-device fleet', () => {
  it('runs every round, and only the scheduled devices ever connect', async () => {
    const output: string[] = [];
    const result = await runSimulation({
      scenario,
      stateDir: tempDir(),
      cacheDir: tempDir(),
      redisUrl: testRedisUrl(),
      threads: 2,
      progressStream: { write: (chunk: string) => output.push(chunk) },
    });
    // Setup is not silent: every step says when it is done, enrolment counts up to the fleet.
    const text = output.join('');
    expect(text).toContain('setup: enrolled: 1,000 of 1,000');
    expect(text).toMatch(/setup: device hosts: 2 threads.*\n/);
    expect(text).toMatch(/setup: ready in \d+\.\d s/);
    const rounds = result.metrics.slice(1);
    expect(rounds.map((m) => m.decision)).toEqual(['COMMITTED', 'COMMITTED']);
    for (const m of rounds) expect(m.participants).toBe(scenario.devicesPerRound);
    const connected = await devicesThatConnected(result.prefix);
    expect(connected).toBeGreaterThanOrEqual(scenario.devicesPerRound);
    expect(connected).toBeLessThanOrEqual(scenario.rounds * scenario.devicesPerRound);
  }, 600_000);
});

describe('a round that cannot progress', () => {
  it('fails the run after the stall timeout, saying what the round waits for', async () => {
    // Round 1 takes every device offline: the coordinator would wait for check-ins until its
    // 60 s selection timeout. A stall timeout below that turns the wait into a named failure.
    const offline = parseScenario(`
name: stall
dataset: synthetic
devices: 4
devicesPerRound: 2
minReports: 1
rounds: 2
partition: { scheme: iid, maxExamplesPerDevice: 20 }
model: { hidden: 8, baseEpochs: 1 }
behaviour: { offlineRounds: [1] }
`);
    const run = runSimulation({
      scenario: offline,
      stateDir: tempDir(),
      cacheDir: tempDir(),
      redisUrl: testRedisUrl(),
      threads: 1,
      progress: false,
      stallTimeoutMs: 3000,
    });
    await expect(run).rejects.toMatchObject({
      code: 'SIMULATION_STALLED',
      message: expect.stringMatching(
        /no progress for 3 s; round stall:1 SELECTING: no device is online in this round/,
      ) as unknown,
    });
  }, 300_000);
});
