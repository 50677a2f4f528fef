import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { activeBackendName, initBackend } from './backend.js';

function tfjsNodeInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}

describe('backend choice', () => {
  it('uses tfjs-node when installed, else wasm, logs one line, and keeps its first choice', async () => {
    const lines: string[] = [];
    const info = await initBackend({ prefer: 'tensorflow', logger: (line) => lines.push(line) });
    // tfjs-node is an optional dependency that cannot install offline; wasm ships with the client.
    const expected = tfjsNodeInstalled() ? 'tensorflow' : 'wasm';
    expect(info.name).toBe(expected);
    expect(activeBackendName()).toBe(expected);
    expect(tf.getBackend()).toBe(expected);
    expect(lines).toEqual([
      expected === 'wasm'
        ? 'flotilla: tfjs backend wasm (unavailable: tensorflow)'
        : 'flotilla: tfjs backend tensorflow',
    ]);
    const again = await initBackend({ prefer: 'cpu', logger: (line) => lines.push(line) });
    expect(again.name).toBe(expected);
    expect(lines).toHaveLength(1);
    const y = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]]));
    expect(Array.from(y.dataSync())).toEqual([11]);
  });
});
