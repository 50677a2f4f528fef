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
// 1, 30% attackers sending −4·Δ clipped. (Unclipped 10·Δ at C = 1 is refused by the coordinator;
// each such round then waits for its deadline, too slow for this suite: precision.test.ts counts
// refusals from a round log.) The full-size figures are in docs/results.md.
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

  it('meets them at the clip bound C = 1: clipped sign flips flagged', async () => {
    const dir = join(outDir, 'c1');
    const result = await runPrecisionSuite({
      size: 'reduced',
      seeds: [1],
      clipNorm: 1,
      cases: ['sign-flip-30'],
      outDir: dir,
      cacheDir: outDir,
      redisUrl: testRedisUrl(),
      threads: 2,
    });
    expect(result.cases.map((c) => c.name)).toEqual(['attack-free', 'sign-flip-30']);
    const [free, flip] = result.cases;
    // Every update is clipped to norm 1, the attackers' too: nothing is refused, nothing honest flagged.
    expect(free?.honestFlagged).toBe(0);
    expect(flip?.honestFlagged).toBe(0);
    expect(flip?.attackerRefused).toBe(0);
    expectAttackTargets(result.cases);
    expect(result.targets.filter((t) => !t.pass)).toEqual([]);
  }, 900_000);
});
