import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunMetrics } from '../src/report/metrics.js';
import { reportRun } from '../src/runner/report-run.js';
import { runSimulation, type SimulationResult } from '../src/runner/run-simulation.js';
import { parseScenario } from '../src/scenario/load.js';
import { testRedisUrl } from '../../test-support/redis.js';

// Each attack against plain FedAvg (McMahan et al. 2017: no validation gate, no clip bound, an
// audit that only records), compared with the attack-free run on the same seeds: same data, same
// shards, same sampling, same base model; only the attackers' updates differ. The attack-free run
// names the backdoor attack with no attackers, so that it measures the backdoor accuracy too.
const plainFedAvg = (name: string, behaviour: string) =>
  parseScenario(`
name: ${name}
seed: 5
devices: 10
devicesPerRound: 10
minReports: 1
rounds: 3
partition: { scheme: iid, maxExamplesPerDevice: 80 }
adapter: { mode: ffa-lora, r: 8, alpha: 16, targetModules: [hidden, out] }
training: { maxSteps: 5, batchSize: 16, learningRate: 0.03, validationTolerance: off }
strategy: { name: fedavg, loraRule: ffa }
clipNorm: none
audit: { enforce: false }
behaviour: ${behaviour}
`);

const dirs: string[] = [];
const tempDir = (label: string) => {
  const dir = mkdtempSync(join(tmpdir(), `flotilla-attack-${label}-`));
  dirs.push(dir);
  return dir;
};
const cacheDir = tempDir('cache');
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function run(
  name: string,
  behaviour: string,
): Promise<{ result: SimulationResult; json: RunMetrics; markdown: string }> {
  const result = await runSimulation({
    scenario: plainFedAvg(name, behaviour),
    stateDir: tempDir(name),
    cacheDir,
    redisUrl: testRedisUrl(),
    threads: 2,
    progress: false,
  });
  const written = reportRun(tempDir(`${name}-report`), result);
  const json = (JSON.parse(readFileSync(written.json, 'utf8')) as { runs: RunMetrics[] }).runs[0];
  if (json === undefined) throw new Error('metrics.json has no run');
  return { result, json, markdown: readFileSync(written.markdown, 'utf8') };
}

const finalAccuracy = (result: SimulationResult): number => result.metrics.at(-1)?.accuracy ?? Number.NaN;

/** The ground truth in metrics.json matches the run's devices and its aggregations. */
function expectGroundTruth(json: RunMetrics, result: SimulationResult, attack: string): void {
  const attackers = result.devices.filter((d) => d.byzantine);
  expect(attackers).toHaveLength(3);
  expect(json.attack?.attack).toBe(attack);
  expect(json.attack?.attackers).toEqual(
    attackers.map(({ deviceId, pseudonym }) => ({ deviceId, pseudonym })),
  );
  const rounds = json.attack?.rounds ?? [];
  expect(rounds.map((r) => r.round)).toEqual([1, 2, 3]);
  // Every device reports every round (no dropouts, no gate): 3 attacker and 7 honest updates each.
  for (const r of rounds) {
    expect(r).toMatchObject({ attackerUpdates: 3, honestUpdates: 7 });
    expect([...r.attackers].sort()).toEqual(attackers.map((a) => a.pseudonym).sort());
  }
  expect(json.attack?.total).toMatchObject({ attackerUpdates: 9, honestUpdates: 21 });
}

describe('attacks against plain FedAvg, with ground truth', () => {
  let clean: SimulationResult;
  beforeAll(async () => {
    clean = (await run('clean', '{ attack: backdoor, byzantineFraction: 0 }')).result;
    expect(clean.attack).toBeNull();
  }, 240_000);

  it('inner-product manipulation (ε = 4, 30% attackers) turns FedAvg backwards', async () => {
    const { result, json } = await run(
      'inner-product',
      '{ byzantineFraction: 0.3, attack: inner-product, attackScale: 4 }',
    );
    expectGroundTruth(json, result, 'inner-product');
    // FedAvg moves by (0.7 − 0.3·4)·μ = −0.5·μ: below the attack-free run and below the start.
    expect(finalAccuracy(result)).toBeLessThan(finalAccuracy(clean) - 0.05);
    expect(finalAccuracy(result)).toBeLessThan(result.metrics[0]?.accuracy ?? 0);
  }, 240_000);

  it("a backdoor (50% of the attackers' examples triggered, update boosted ×3) is learnt", async () => {
    const { result, json, markdown } = await run(
      'backdoor',
      '{ byzantineFraction: 0.3, attack: backdoor, attackScale: 3, backdoor: { targetClass: 0, poisonFraction: 0.5 } }',
    );
    expectGroundTruth(json, result, 'backdoor');
    const backdoor = (r: SimulationResult) => r.metrics.map((m) => m.backdoorAccuracy ?? Number.NaN);
    // Same base, same trigger: round 0 agrees.
    expect(backdoor(result)[0]).toBe(backdoor(clean)[0]);
    expect(json.metrics.at(-1)?.backdoorAccuracy).toBe(backdoor(result).at(-1));
    // Attack-free, the trigger moves ~1% of inputs to class 0; the attackers teach it to FedAvg
    // (measured: 28% after 3 rounds, rising every round).
    const attacked = backdoor(result);
    const reference = backdoor(clean).at(-1) ?? 1;
    expect(attacked.at(-1)).toBeGreaterThan(reference + 0.15);
    expect(attacked.at(-1)).toBeGreaterThan(attacked[1] ?? 1);
    expect(markdown).toContain(
      'Backdoor accuracy (triggered test inputs of other classes put in the target class)',
    );
  }, 240_000);

  it('"a little is enough" with z = 100 collapses FedAvg, and reports its ground truth', async () => {
    // The paper's z_max (0.52 for 3 of 10) keeps the crafted vector inside the honest spread, and
    // three rounds of FedAvg show no loss from it, nor with z = 3 or 10 (measured on this scenario:
    // 62.6% attack-free, 62.7% at z = 10; on Dirichlet(0.1) shards 57.0% attack-free, 58.4% and
    // 58.9% at z = 3 and 10): the harm Baruch et al. report builds up over thousands of SGD steps.
    // A larger z is the same construction, pushed: FedAvg moves by μ − 0.3·z·σ per coordinate.
    const { result, json, markdown } = await run(
      'little-is-enough',
      '{ byzantineFraction: 0.3, attack: little-is-enough, attackScale: 100 }',
    );
    expect(finalAccuracy(result)).toBeLessThan(finalAccuracy(clean) - 0.05);
    expect(finalAccuracy(result)).toBeLessThan(result.metrics[0]?.accuracy ?? 0);
    expectGroundTruth(json, result, 'little-is-enough');
    const total = json.attack?.total;
    // FedAvg gives every update its weight: whatever was caught, the audit flagged.
    expect(total?.attackersExcluded).toBe(0);
    expect(total?.attackersCaught).toBe(total?.attackersFlagged);
    expect(markdown).toContain('## Attack ground truth: little-is-enough');
    expect(markdown).toContain(result.devices.find((d) => d.byzantine)?.deviceId ?? 'an attacker');
  }, 240_000);
});
