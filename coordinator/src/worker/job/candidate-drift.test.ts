import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { biasTensorName, encodeBaseBundle, sha256Hex, weightTensorName } from '@flotilla/protocol';
import { LocalDirBlobStore } from '../../shared/blob-store/local-dir-blob-store.js';
import { moduleDriftOf } from './candidate-drift.js';
import { moduleDTask } from '../../../test/support/index.js';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-drift-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A base bundle with one dense layer `d`: kernel [in 3, out 2] all twos, bias [2] all ones. */
function baseBundle(): Uint8Array {
  const kernel = new Float32Array(6).fill(2);
  const bias = new Float32Array(2).fill(1);
  const data = new Uint8Array(32);
  data.set(new Uint8Array(kernel.buffer), 0);
  data.set(new Uint8Array(bias.buffer), 24);
  return encodeBaseBundle({
    modelTopology: { class_name: 'Sequential' },
    weightSpecs: [
      { name: 'd/kernel', shape: [3, 2], dtype: 'float32' },
      { name: 'd/bias', shape: [2], dtype: 'float32' },
    ],
    weightData: data,
  });
}

describe('moduleDriftOf', () => {
  it('full mode: ‖ΔW‖_F / ‖W‖_F of the kernel offset, ΔW = [[0, 3, 0], [4, 0, 0]] on W of twos', async () => {
    const blobs = new LocalDirBlobStore({ dir });
    const bundle = baseBundle();
    const digest = sha256Hex(bundle);
    await blobs.put(digest, bundle);
    const task = moduleDTask({
      adapter: { mode: 'full', targetModules: ['d'], r: 1, alpha: 1, seed: 0 },
      shape: { in: 3, out: 2 },
      base: { digest, bytes: bundle.length },
    });
    const adapter = new Map([
      [weightTensorName('d'), { shape: [2, 3], values: Float32Array.from([0, 3, 0, 4, 0, 0]) }],
      [biasTensorName('d'), { shape: [2], values: Float32Array.from([100, 0]) }],
    ]);
    const drift = await moduleDriftOf(blobs, task, adapter);
    expect(drift).toHaveLength(1);
    expect(drift[0]).toMatchObject({ module: 'd', kind: 'full' });
    // ‖ΔW‖ = 5, ‖W‖ = √(6·4) = √24; the bias offset does not enter the kernel drift.
    expect(drift[0]?.drift).toBeCloseTo(5 / Math.sqrt(24), 12);
  });
});
