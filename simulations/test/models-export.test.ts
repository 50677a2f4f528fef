// `flotilla models export` (issue 18): base model bundles from a built-in architecture and from a
// tfjs model.json, with the dense layers a task can target.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '@flotilla/protocol';
import { initBackend, loadBaseModel } from '@flotilla/client';
import { saveModelFiles } from '../src/model/model-files.js';
import { flotilla } from './support/index.js';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-models-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => initBackend({ prefer: 'cpu', logger: () => undefined }));

interface Exported {
  path: string;
  digest: string;
  bytes: number;
  inputShape: number[];
  classes: number;
  denseLayers: Array<{ name: string; in: number; out: number }>;
  trained: boolean;
}

async function exportJson(args: string[]): Promise<Exported> {
  const run = await flotilla(['models', 'export', '--json', ...args]);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as Exported;
}

describe('flotilla models export', () => {
  it('writes a built-in CNN whose bundle rebuilds the model, and lists its dense head', async () => {
    const out = join(dir, 'cnn.bundle');
    const exported = await exportJson([
      '--arch',
      'cnn',
      '--input',
      '28x28x1',
      '--hidden',
      '32',
      '--out',
      out,
    ]);
    const bytes = new Uint8Array(readFileSync(out));
    expect(exported.digest).toBe(sha256Hex(bytes));
    expect(exported.bytes).toBe(bytes.byteLength);
    expect(exported.inputShape).toEqual([28, 28, 1]);
    expect(exported.classes).toBe(10);
    // conv 'same' padding keeps 28x28; two 2x2 pools leave 7x7 of 16 filters = 784 features.
    expect(exported.denseLayers).toEqual([
      { name: 'hidden', in: 7 * 7 * 16, out: 32 },
      { name: 'out', in: 32, out: 10 },
    ]);
    expect(exported.trained).toBe(false);
    const model = await loadBaseModel(bytes);
    expect(model.outputs[0]?.shape).toEqual([null, 10]);
    model.dispose();
  });

  it('is deterministic for a seed, and a char-rnn predicts over its vocabulary', async () => {
    const charRnn = (out: string) =>
      exportJson(['--arch', 'char-rnn', '--input', '40', '--vocabulary', '30', '--out', join(dir, out)]);
    const a = await charRnn('a');
    const b = await charRnn('b');
    expect(a.digest).toBe(b.digest);
    expect(a).toMatchObject({ inputShape: [40], classes: 30 });
    expect(a.denseLayers.map((l) => l.name)).toEqual(['hidden', 'out']);
  });

  it('converts a tfjs model.json with its weight files, keeping every weight', async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ name: 'encoder', inputShape: [6], units: 5, activation: 'tanh' }),
        tf.layers.dense({ name: 'classifier', units: 4, activation: 'softmax' }),
      ],
    });
    const modelJson = await saveModelFiles(model, join(dir, 'saved'));
    const out = join(dir, 'saved.bundle');
    const exported = await exportJson(['--model-json', modelJson, '--out', out]);
    expect(exported.denseLayers).toEqual([
      { name: 'encoder', in: 6, out: 5 },
      { name: 'classifier', in: 5, out: 4 },
    ]);
    const rebuilt = await loadBaseModel(new Uint8Array(readFileSync(out)));
    const x = tf.tensor2d([[0.1, -0.2, 0.3, 0.5, -1, 2]]);
    const expected = (model.predict(x) as tf.Tensor).dataSync();
    const got = (rebuilt.predict(x) as tf.Tensor).dataSync();
    expect(Array.from(got)).toEqual(Array.from(expected));
    tf.dispose([x]);
    model.dispose();
    rebuilt.dispose();
  });

  it('refuses bad input with exit 2 and the flag it concerns', async () => {
    const taken = join(dir, 'taken.bundle');
    writeFileSync(taken, 'x');
    const cases: Array<[string[], string]> = [
      [['--arch', 'transformer', '--out', join(dir, 'x')], '--arch: expected one of mlp, cnn, char-rnn'],
      [['--arch', 'cnn', '--train-on', 'mnist-rotated', '--out', join(dir, 'x')], 'train-on: only the mlp'],
      [
        ['--arch', 'cnn', '--input', '28x28', '--out', join(dir, 'x')],
        'input: the cnn takes height x width x channels',
      ],
      [['--input', '7x', '--out', join(dir, 'x')], '--input: expected whole numbers joined by x'],
      [['--out', taken], `--out: ${taken} exists (--force overwrites it)`],
    ];
    for (const [args, message] of cases) {
      const run = await flotilla(['models', 'export', ...args]);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toContain(message);
    }
  });
});
