import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runPrecisionSuite } from '../src/precision/run-suite.js';
import { TARGETS } from '../src/precision/report.js';
import { testRedisUrl } from '../../test-support/redis.js';

// The drift audit's precision suite at reduced size (10 devices, every one in every round, 3
// rounds), on all the real parts: an honest 2-labels-per-device run, the attack-free reference,
// and 30% attackers sending 10·Δ or the crafted vector of "a little is enough". The full-size
// figures (20 devices, 20 rounds, 3 seeds, every case) are in docs/results.md.
const outDir = mkdtempSync(join(tmpdir(), 'flotilla-precision-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

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
    for (const c of result.cases.filter((x) => x.kind === 'attack')) {
      expect(c.attackerUpdates, c.name).toBeGreaterThanOrEqual(6);
      expect(c.attackerFlagged / c.attackerUpdates, c.name).toBeGreaterThanOrEqual(
        TARGETS.minAttackerFlagged,
      );
      expect(Math.min(...c.accuracyRatio), c.name).toBeGreaterThanOrEqual(TARGETS.minAccuracyRatio);
    }
    expect(result.targets.filter((t) => !t.pass)).toEqual([]);
    // The summary a researcher reads, as written next to the runs.
    expect(readFileSync(join(outDir, 'precision.md'), 'utf8')).toContain('| `scaling-30` | 1 |');
  }, 900_000);
});
