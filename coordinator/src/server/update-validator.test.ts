import { describe, expect, it } from 'vitest';
import {
  FlotillaError,
  TaskDefinitionSchema,
  biasTensorName,
  encodeFloat32Tensors,
  encodeSafetensors,
  loraTensorNames,
  weightTensorName,
  type AdapterSpec,
  type RoundPlan,
} from '@flotilla/protocol';
import { validateDeltaBlob } from './update-validator.js';
import { moduleDTask } from '../../test/support/index.js';

const task = moduleDTask({
  adapter: { mode: 'lora', targetModules: ['d'], r: 1, alpha: 1, seed: 0 },
  shape: { in: 2, out: 2 },
});
const plan = {
  clipNorm: 5,
  adapter: { spec: task.adapter, version: 0, digest: null },
} as unknown as RoundPlan;
const names = loraTensorNames('d');

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return 'OK';
  } catch (error) {
    return FlotillaError.is(error) ? error.code : 'THROWN';
  }
}

describe('validateDeltaBlob', () => {
  it('recomputes the global L2 norm: A = [3, 0], B = [[0], [4]] has norm 5 (a 3-4-5 triangle)', () => {
    const bytes = encodeFloat32Tensors(
      new Map([
        [names.a, { shape: [1, 2], values: new Float32Array([3, 0]) }],
        [names.b, { shape: [2, 1], values: new Float32Array([0, 4]) }],
      ]),
    );
    expect(validateDeltaBlob(bytes, task, plan).norm).toBe(5);
    expect(codeOf(() => validateDeltaBlob(bytes, task, { ...plan, clipNorm: 4.99 }))).toBe('NORM_EXCEEDED');
  });

  it('dequantises int8 with scale:<name>: q = [30, 40] at scale 0.1 has norm 5', () => {
    const a = new Uint8Array([30, 0]);
    const b = new Uint8Array([0, 40]);
    const bytes = encodeSafetensors({
      tensors: new Map([
        [names.a, { dtype: 'I8' as const, shape: [1, 2], data: a }],
        [names.b, { dtype: 'I8' as const, shape: [2, 1], data: b }],
      ]),
      metadata: { [`scale:${names.a}`]: '0.1', [`scale:${names.b}`]: '0.1' },
    });
    expect(validateDeltaBlob(bytes, task, plan).norm).toBeCloseTo(5, 12);
    const noScale = encodeSafetensors({
      tensors: new Map([
        [names.a, { dtype: 'I8' as const, shape: [1, 2], data: a }],
        [names.b, { dtype: 'I8' as const, shape: [2, 1], data: b }],
      ]),
    });
    expect(codeOf(() => validateDeltaBlob(noScale, task, plan))).toBe('CORRUPT_FILE');
  });

  it('refuses missing tensors, bias tensors in a LoRA adapter, and Infinity', () => {
    const onlyA = encodeFloat32Tensors(new Map([[names.a, { shape: [1, 2], values: new Float32Array(2) }]]));
    expect(codeOf(() => validateDeltaBlob(onlyA, task, plan))).toBe('SHAPE_MISMATCH');
    const withBias = encodeFloat32Tensors(
      new Map([
        [names.a, { shape: [1, 2], values: new Float32Array(2) }],
        [names.b, { shape: [2, 1], values: new Float32Array(2) }],
        [biasTensorName('d'), { shape: [2], values: new Float32Array(2) }],
      ]),
    );
    expect(codeOf(() => validateDeltaBlob(withBias, task, plan))).toBe('SHAPE_MISMATCH');
    const inf = encodeFloat32Tensors(
      new Map([
        [names.a, { shape: [1, 2], values: new Float32Array([Number.POSITIVE_INFINITY, 0]) }],
        [names.b, { shape: [2, 1], values: new Float32Array(2) }],
      ]),
    );
    expect(codeOf(() => validateDeltaBlob(inf, task, plan))).toBe('NON_FINITE');
  });

  it('in ffa-lora mode takes lora_A as its zero delta or not at all, and refuses any change to it', () => {
    const ffaPlan = { ...plan, adapter: { ...plan.adapter, spec: { ...task.adapter, mode: 'ffa-lora' } } };
    const withA = (a: number[]) =>
      encodeFloat32Tensors(
        new Map([
          [names.a, { shape: [1, 2], values: new Float32Array(a) }],
          [names.b, { shape: [2, 1], values: new Float32Array([0, 4]) }],
        ]),
      );
    const onlyB = encodeFloat32Tensors(
      new Map([[names.b, { shape: [2, 1], values: new Float32Array([0, 4]) }]]),
    );
    const ffaTask = { ...task, adapter: ffaPlan.adapter.spec } as typeof task;
    expect(validateDeltaBlob(onlyB, ffaTask, ffaPlan as RoundPlan).norm).toBe(4);
    expect(validateDeltaBlob(withA([0, 0]), ffaTask, ffaPlan as RoundPlan).norm).toBe(4);
    expect(codeOf(() => validateDeltaBlob(withA([0, 1e-7]), ffaTask, ffaPlan as RoundPlan))).toBe(
      'BAD_REQUEST',
    );
    // In lora mode A is trained: the same delta is fine.
    expect(validateDeltaBlob(withA([3, 0]), task, plan).norm).toBe(5);
  });

  describe('full mode', () => {
    // A non-square module (in 3, out 2) so that [out, in] and [in, out] differ.
    const fullTask = moduleDTask({
      adapter: { mode: 'full', targetModules: ['d'], r: 1, alpha: 1, seed: 0 },
      shape: { in: 3, out: 2 },
    });
    const planFor = (spec: AdapterSpec): RoundPlan => ({ ...plan, adapter: { ...plan.adapter, spec } });
    const fullPlan = planFor(fullTask.adapter);
    type Entry = [string, { shape: number[]; values: Float32Array }];
    const weight = (shape: number[], values: number[]): Entry => [
      weightTensorName('d'),
      { shape, values: new Float32Array(values) },
    ];
    const bias = (values: number[]): Entry => [
      biasTensorName('d'),
      { shape: [2], values: new Float32Array(values) },
    ];

    it('accepts weight [out, in] + bias [out] and takes the norm over both: [3, 0, …] and [0, 4] give 5', () => {
      const bytes = encodeFloat32Tensors(new Map([weight([2, 3], [0, 3, 0, 0, 0, 0]), bias([0, 4])]));
      expect(validateDeltaBlob(bytes, fullTask, fullPlan)).toEqual({ norm: 5, tensorCount: 2 });
      expect(codeOf(() => validateDeltaBlob(bytes, fullTask, { ...fullPlan, clipNorm: 4.99 }))).toBe(
        'NORM_EXCEEDED',
      );
    });

    it('refuses the tfjs layout [in, out], a missing weight or bias, and LoRA factors', () => {
      const transposed = encodeFloat32Tensors(new Map([weight([3, 2], [0, 0, 0, 0, 0, 0]), bias([0, 0])]));
      expect(codeOf(() => validateDeltaBlob(transposed, fullTask, fullPlan))).toBe('SHAPE_MISMATCH');
      const noBias = encodeFloat32Tensors(new Map([weight([2, 3], [0, 0, 0, 0, 0, 0])]));
      expect(codeOf(() => validateDeltaBlob(noBias, fullTask, fullPlan))).toBe('SHAPE_MISMATCH');
      const noWeight = encodeFloat32Tensors(new Map([bias([0, 0])]));
      expect(codeOf(() => validateDeltaBlob(noWeight, fullTask, fullPlan))).toBe('SHAPE_MISMATCH');
      const withLora = encodeFloat32Tensors(
        new Map([
          weight([2, 3], [0, 0, 0, 0, 0, 0]),
          bias([0, 0]),
          [names.b, { shape: [2, 1], values: new Float32Array(2) }],
        ]),
      );
      expect(codeOf(() => validateDeltaBlob(withLora, fullTask, fullPlan))).toBe('SHAPE_MISMATCH');
    });

    it.each(['lora', 'ffa-lora', 'bias'] as const)('refuses weight tensors in %s mode', (mode) => {
      const spec: AdapterSpec = { mode, targetModules: ['d'], r: 1, alpha: 1, seed: 0 };
      const modeTask = TaskDefinitionSchema.parse({ ...fullTask, adapter: spec });
      const tensors = new Map([weight([2, 3], [0, 0, 0, 0, 0, 0]), bias([0, 0])]);
      if (mode !== 'bias') {
        tensors.set(names.a, { shape: [1, 3], values: new Float32Array(3) });
        tensors.set(names.b, { shape: [2, 1], values: new Float32Array(2) });
        tensors.delete(biasTensorName('d'));
      }
      const bytes = encodeFloat32Tensors(tensors);
      expect(codeOf(() => validateDeltaBlob(bytes, modeTask, planFor(spec)))).toBe('SHAPE_MISMATCH');
      // The same file without the weight tensor is a valid delta of that mode.
      tensors.delete(weightTensorName('d'));
      expect(codeOf(() => validateDeltaBlob(encodeFloat32Tensors(tensors), modeTask, planFor(spec)))).toBe(
        'OK',
      );
    });
  });
});
