import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { flattenTensors, unflattenTensors, type NamedTensor } from './flatten.js';
import { codeOf } from './test-error-code.js';

function tensor(shape: number[], start: number): NamedTensor {
  const length = shape.reduce((a, b) => a * b, 1);
  return { shape, values: Float32Array.from({ length }, (_, i) => start + i) };
}

describe('flattenTensors / unflattenTensors', () => {
  it('orders tensors by name whatever the insertion order', () => {
    const a = new Map([
      ['b.lora_B.weight', tensor([2, 1], 10)],
      ['a.lora_A.weight', tensor([1, 3], 0)],
    ]);
    const b = new Map([...a].reverse());
    const flatA = flattenTensors(a);
    const flatB = flattenTensors(b);
    expect(flatA.layout).toEqual([
      { name: 'a.lora_A.weight', shape: [1, 3], offset: 0, length: 3 },
      { name: 'b.lora_B.weight', shape: [2, 1], offset: 3, length: 2 },
    ]);
    expect(Array.from(flatA.values)).toEqual([0, 1, 2, 10, 11]);
    expect(flatB).toEqual(flatA);
  });

  it('round-trips any set of tensors', () => {
    const shapes = fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 3 });
    const tensors = fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), shapes, { maxKeys: 5 });
    fc.assert(
      fc.property(tensors, (dict) => {
        const map = new Map(Object.entries(dict).map(([name, shape], k) => [name, tensor(shape, k * 100)]));
        const { values, layout } = flattenTensors(map);
        expect(unflattenTensors(values, layout)).toEqual(map);
        expect(flattenTensors(map, { expected: layout }).values).toEqual(values);
      }),
    );
  });

  it('throws SHAPE_MISMATCH when layouts or lengths differ', () => {
    const reference = flattenTensors(new Map([['x', tensor([2, 2], 0)]]));
    const transposedish = new Map([['x', tensor([4, 1], 0)]]);
    const renamed = new Map([['y', tensor([2, 2], 0)]]);
    const extra = new Map([
      ['x', tensor([2, 2], 0)],
      ['z', tensor([1], 0)],
    ]);
    for (const map of [transposedish, renamed, extra]) {
      expect(codeOf(() => flattenTensors(map, { expected: reference.layout }))).toBe('SHAPE_MISMATCH');
    }
    expect(codeOf(() => flattenTensors(new Map([['x', { shape: [3], values: new Float32Array(2) }]])))).toBe(
      'SHAPE_MISMATCH',
    );
    expect(codeOf(() => unflattenTensors(new Float32Array(3), reference.layout))).toBe('SHAPE_MISMATCH');
  });
});
