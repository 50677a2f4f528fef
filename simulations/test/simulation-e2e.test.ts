import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyRoundLog } from '@flotilla/protocol';
import { LocalDirBlobStore } from '@flotilla/coordinator/shared';
import { recomputeAggregateDigest } from '@flotilla/coordinator/worker';
import type { SimulationResult } from '../src/runner/run-simulation.js';
import { tempDirs } from '../../test-support/temp-dirs.js';
import { ffaFleet, simulate } from './support/index.js';

// A short run on all the real parts: the shared test Redis, the coordinator, the BullMQ worker
// and six devices training FFA-LoRA adapters with tfjs over real sockets, in two worker threads.
const scenario = ffaFleet({
  name: 'e2e',
  seed: 7,
  devices: 6,
  rounds: 3,
  partition: { scheme: 'iid', maxExamplesPerDevice: 60 },
  training: { maxSteps: 4, batchSize: 16, learningRate: 0.03 },
  behaviour: { dropoutProbability: 0.25 },
});

const stateDir = tempDirs('flotilla-e2e-');
const cacheDir = stateDir();

async function run(): Promise<SimulationResult> {
  return simulate({ scenario, stateDir: stateDir(), cacheDir });
}

/** Everything a researcher compares between runs: the metrics without wall-clock timings. */
function comparable(result: SimulationResult): unknown[] {
  return result.metrics.map(({ timings: _timings, ...rest }) => rest);
}

describe('end-to-end simulation', () => {
  let first: SimulationResult;

  it('runs rounds through coordinator, worker and devices, and the adapter helps on the shifted domain', async () => {
    first = await run();
    const rounds = first.metrics.slice(1);
    expect(rounds).toHaveLength(3);
    // Dropouts are skips the coordinator hears about: a round commits exactly when quorum is met.
    for (const m of rounds) {
      if (m.participants >= scenario.minReports) expect(m.decision).toBe('COMMITTED');
      else expect(m.decision).toBe('ABANDONED');
    }
    expect(rounds.filter((m) => m.decision === 'COMMITTED').length).toBeGreaterThanOrEqual(2);
    const start = first.metrics[0]?.accuracy ?? 1;
    const end = rounds.at(-1)?.accuracy ?? 0;
    expect(end).toBeGreaterThan(start);
    expect(rounds.every((m) => m.participants === 0 || m.bytesUp > 0)).toBe(true);
  }, 240_000);

  it('leaves a round log that verifies against the coordinator key and names no raw device id', async () => {
    const lines = readFileSync(first.roundLogPath, 'utf8').trim().split('\n');
    const records = lines.map((line): unknown => JSON.parse(line));
    // Recompute every aggregate from the retained deltas, as `flotilla audit verify --blobs` does.
    const blobs = new LocalDirBlobStore({ dir: join(dirname(dirname(first.roundLogPath)), 'blobs') });
    const report = await verifyRoundLog(records, {
      trustedKey: first.coordinatorKey,
      recompute: (record) => recomputeAggregateDigest(record.event, blobs),
    });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    const committed = first.metrics.filter((m) => m.round > 0 && m.decision === 'COMMITTED').length;
    expect(report.recomputed).toBe(committed);
    const text = lines.join('\n');
    for (let i = 0; i < scenario.devices; i++)
      expect(text).not.toContain(`device-${String(i).padStart(4, '0')}`);
    expect(text).toContain('"type":"promotion"');
  });

  it('gives identical metrics for the same seed', async () => {
    const second = await run();
    expect(comparable(second)).toEqual(comparable(first));
  }, 240_000);
});
