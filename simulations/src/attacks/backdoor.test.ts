import { describe, expect, it } from 'vitest';
import type { Dataset } from '../data/dataset.js';
import { createRng } from '../rng/random.js';
import { applyDeltaAttack } from './attacks.js';
import { backdoorTestSet, backdoorTrigger, poisonWithBackdoor } from './backdoor.js';

/** n images of h×w (one channel), pixel values i/10 for example i, labels i mod 3. */
function images(n: number, h: number, w: number): Dataset {
  const dim = h * w;
  const xs = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) xs.fill(i / 10, i * dim, (i + 1) * dim);
  return { xs, ys: Int32Array.from({ length: n }, (_, i) => i % 3), n, dim, numClasses: 3, shape: [h, w, 1] };
}

describe('backdoor trigger (Bagdasaryan et al. 2020)', () => {
  it('is a 4×4 patch one pixel in from the bottom-right corner of a 28×28 image, at the largest value', () => {
    const trigger = backdoorTrigger(images(3, 28, 28));
    // Rows and columns 23..26 of 0..27; offset row·28 + column.
    const expected: number[] = [];
    for (let row = 23; row <= 26; row++) for (let col = 23; col <= 26; col++) expected.push(row * 28 + col);
    expect(trigger.indices).toEqual(expected);
    expect(trigger.value).toBeCloseTo(0.2, 6);
    expect(trigger.description).toBe('4×4 patch at rows 23–26, columns 23–26, value 0.20000000298023224');
  });

  it('covers every channel of a colour image, and the last dim/8 features of a vector', () => {
    const rgb = backdoorTrigger({ xs: Float32Array.of(0, 1), dim: 7 * 7 * 3, shape: [7, 7, 3] });
    // side round(7/7) = 1: pixel (5, 5), channels 0..2.
    expect(rgb.indices).toEqual([(5 * 7 + 5) * 3, (5 * 7 + 5) * 3 + 1, (5 * 7 + 5) * 3 + 2]);
    const vector = backdoorTrigger({ xs: Float32Array.of(-1, 3), dim: 32 });
    expect(vector).toMatchObject({ indices: [28, 29, 30, 31], value: 3 });
    expect(() => backdoorTrigger({ xs: new Float32Array(), dim: 4 })).toThrow(/needs data/);
  });
});

describe('backdoor poisoning and evaluation', () => {
  const data = images(10, 6, 6);
  data.xs[0] = 5; // one bright pixel: the trigger value, unlike any patch pixel
  const trigger = backdoorTrigger(data);

  it('stamps and relabels round(fraction·n) examples in place, leaving the rest and the input untouched', () => {
    const poisoned = poisonWithBackdoor(data, { trigger, target: 2, fraction: 0.3, rng: createRng(4) });
    expect(poisoned.n).toBe(10);
    const stamped = Array.from({ length: 10 }, (_, i) => i).filter((i) =>
      trigger.indices.every((k) => poisoned.xs[i * data.dim + k] === trigger.value),
    );
    expect(trigger.value).toBe(5);
    expect(stamped).toHaveLength(3);
    for (const i of stamped) expect(poisoned.ys[i]).toBe(2);
    const untouched = Array.from({ length: 10 }, (_, i) => i).filter((i) => !stamped.includes(i));
    for (const i of untouched) {
      expect(poisoned.ys[i]).toBe(data.ys[i]);
      expect(poisoned.xs.subarray(i * 36, (i + 1) * 36)).toEqual(data.xs.subarray(i * 36, (i + 1) * 36));
    }
    expect(data.xs[36 + (trigger.indices[0] ?? 0)]).toBeCloseTo(0.1, 6);
    expect(Array.from(data.ys)).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
    expect(() => poisonWithBackdoor(data, { trigger, target: 3, fraction: 0.3, rng: createRng(1) })).toThrow(
      /target 3 outside 0..2/,
    );
    expect(() => poisonWithBackdoor(data, { trigger, target: 0, fraction: 0, rng: createRng(1) })).toThrow(
      /fraction/,
    );
  });

  it('tests on every non-target example, triggered and labelled with the target', () => {
    const test = backdoorTestSet(data, { trigger, target: 2 });
    // Labels 0,1,2,0,1,2,0,1,2,0: the seven that are not 2.
    expect(test.n).toBe(7);
    expect(Array.from(test.ys)).toEqual([2, 2, 2, 2, 2, 2, 2]);
    // The second kept example is example 1 (value 0.1) with the patch at 5.
    const row = test.xs.subarray(36, 72);
    expect(row[0]).toBeCloseTo(0.1, 6);
    for (const k of trigger.indices) expect(row[k]).toBe(5);
  });

  it('scales the poisoned update by γ only when asked (model replacement)', () => {
    const delta = new Map([['w', Float32Array.of(1, -2)]]);
    expect(applyDeltaAttack(delta, { attack: 'backdoor' })).toBe(delta);
    expect([...(applyDeltaAttack(delta, { attack: 'backdoor', scale: 5 }).get('w') ?? [])]).toEqual([5, -10]);
  });
});
