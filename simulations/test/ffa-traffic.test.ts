import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeFloat32Tensors } from '@flotilla/protocol';
import { AdapterRegistry, LocalDirBlobStore } from '@flotilla/coordinator/shared';
import { Redis } from 'ioredis';
import { adapterTraffic } from '../src/runner/report-run.js';
import { testRedisUrl } from '../../test-support/redis.js';
import { tempDirs } from '../../test-support/temp-dirs.js';
import { ffaFleet, simulate } from './support/index.js';

// FFA-LoRA trains B alone (A is frozen from the shared seed). A device following the fleet's
// versions must then download only B: each version's delta holds only the tensors that changed,
// and a device that holds version 0 rebuilds it (seeded A, zero B) instead of downloading the full
// adapter. Every device takes part in every round, so each round's adapter downloads are each
// device's one-version catch-up: B, at most what each device uploads (its B update).
const scenario = ffaFleet({ name: 'ffa-traffic', seed: 3, rounds: 3 });

const tempDir = tempDirs('flotilla-ffa-traffic-');

describe('FFA-LoRA traffic', () => {
  it('devices download only B: adapter bytes down ≤ bytes up in every round after the first', async () => {
    const stateDir = tempDir();
    const result = await simulate({ scenario, stateDir, cacheDir: tempDir(), threads: 1 });
    const rounds = result.metrics.slice(1);
    expect(rounds.map((m) => m.decision)).toEqual(['COMMITTED', 'COMMITTED', 'COMMITTED']);
    for (const m of rounds.slice(1)) {
      expect(m.adapterBytesDown ?? 0).toBeGreaterThan(0);
      expect(m.adapterBytesDown ?? Infinity).toBeLessThanOrEqual(m.bytesUp);
    }
    expect(adapterTraffic(result)).toMatch(/ down ≤ .* up over rounds 2–3$/);

    // What they downloaded: each version's delta names B tensors only.
    const redis = new Redis(testRedisUrl());
    try {
      const registry = new AdapterRegistry({ redis, prefix: result.prefix });
      const blobs = new LocalDirBlobStore({ dir: join(dirname(dirname(result.roundLogPath)), 'blobs') });
      for (const version of [1, 2, 3]) {
        const manifest = (await registry.getManifest(result.taskId, version))?.manifest;
        const bytes = await blobs.get(manifest?.delta?.f32.digest ?? '');
        const names = [...decodeFloat32Tensors(bytes ?? new Uint8Array()).tensors.keys()].sort();
        expect(names).toEqual([
          'base_model.model.hidden.lora_B.weight',
          'base_model.model.out.lora_B.weight',
        ]);
        expect(manifest?.expectedCost.deltaBytes).toBeLessThan((manifest?.expectedCost.fullBytes ?? 0) / 2);
      }
    } finally {
      redis.disconnect();
    }
  }, 300_000);
});
