import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runPrecisionSuite } from '../src/precision/run-suite.js';
import { TARGETS, type CaseSummary } from '../src/precision/report.js';
import { testRedisUrl } from '../../test-support/redis.js';

// The drift audit's precision suite at reduced size (10 devices, every one in every round, 3
// rounds), on all the real parts: an honest 2-labels-per-device run, the attack-free reference,
// and 30% attackers sending 10·Δ or the crafted vector of "a little is enough" with the clip bound
// above every honest norm (C = 100); then at the built-in bound C = 1, where every update has norm
// 1, 30% attackers sending −4·Δ clipped, or 10·Δ unclipped (which the coordinator refuses). The
// full-size figures (20 devices, 20 rounds, 3 seeds, every case, both bounds) are in
// docs/results.md.
const outDir = mkdtempSync(join(tmpdir(), 'flotilla-precision-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

/** The attacked cases meet the recall and accuracy targets, each with enough attacker updates. */
function expectAttackTargets(cases: readonly CaseSummary[]): void {
  for (const c of cases.filter((x) => x.kind === 'attack')) {
    const sent = c.attackerUpdates + c.attackerRefused;
    expect(sent, c.name).toBeGreaterThanOrEqual(6);
    expect((c.attackerFlagged + c.attackerRefused) / sent, c.name).toBeGreaterThanOrEqual(
      TARGETS.minAttackerFlagged,
    );
    expect(Math.min(...c.accuracyRatio), c.name).toBeGreaterThanOrEqual(TARGETS.minAccuracyRatio);
  }
}

describe('flotilla audit-precision (reduced size)', () => {
  it("meets the targets: honest updates rarely flagged, attackers' updates flagged, a robust run keeps its accuracy", async () => {
    const result = await runPrecisionSuite({
      size: 'reduced',
      seeds: [1],
      cases: ['honest-2-labels', 'scaling-30', 'little-is-enough-30'],
      outDir,
      cacheDir: outDir,
      redisUrl: testRedisUrl(),
      threads: 2,
    });
    expect(result.cases.map((c) => c.name)).toEqual([
      'honest-2-labels',
      'attack-free',
      'scaling-30',
      'little-is-enough-30',
    ]);
    const honest = result.cases[0];
    expect(honest?.honestUpdates).toBeGreaterThanOrEqual(20);
    expect((honest?.honestFlagged ?? 1) / (honest?.honestUpdates ?? 1)).toBeLessThanOrEqual(
      TARGETS.maxHonestFlagged,
    );
    expectAttackTargets(result.cases);
    expect(result.targets.filter((t) => !t.pass)).toEqual([]);
    // The summary a researcher reads, as written next to the runs.
    expect(readFileSync(join(outDir, 'precision.md'), 'utf8')).toContain('| `scaling-30` | 1 |');
  }, 900_000);

  it('meets them at the clip bound C = 1: clipped sign flips flagged, unclipped scaling refused', async () => {
    const dir = join(outDir, 'c1');
    const result = await runPrecisionSuite({
      size: 'reduced',
      seeds: [1],
      clipNorm: 1,
      cases: ['sign-flip-30', 'scaling-30'],
      outDir: dir,
      cacheDir: outDir,
      redisUrl: testRedisUrl(),
      threads: 2,
    });
    expect(result.cases.map((c) => c.name)).toEqual(['attack-free', 'sign-flip-30', 'scaling-30']);
    const [free, flip, scaling] = result.cases;
    // Every honest update is clipped to norm 1; nothing honest is flagged or refused.
    expect(free?.honestFlagged).toBe(0);
    expect(flip?.honestFlagged).toBe(0);
    // The clipped sign flips reach the aggregation and are flagged there; the unclipped 10·Δ never do.
    expect(flip?.attackerRefused).toBe(0);
    expect(scaling?.attackerUpdates).toBe(0);
    expectAttackTargets(result.cases);
    expect(result.targets.filter((t) => !t.pass)).toEqual([]);
  }, 900_000);
});
