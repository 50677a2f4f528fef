import { describe, expect, it } from 'vitest';
import {
  FlotillaError,
  TaskDefinitionSchema,
  biasTensorName,
  encodeFloat32Tensors,
  encodeSafetensors,
  loraTensorNames,
  type RoundPlan,
} from '@flotilla/protocol';
import { validateDeltaBlob } from './update-validator.js';

const task = TaskDefinitionSchema.parse({
  taskId: 't',
  baseModel: { digest: 'a'.repeat(64), format: 'tfjs-layers-bundle', bytes: 1 },
  adapter: { mode: 'lora', targetModules: ['d'], r: 1, alpha: 1, seed: 0 },
  moduleShapes: { d: { in: 2, out: 2 } },
  rounds: {
    goalCount: 1,
    minReports: 1,
    training: { epochs: 1, batchSize: 1, learningRate: 0.1, fedProxMu: 0, optimizer: 'sgd' },
  },
  policy: { allowedModules: ['d'], clipNorm: 5, maxBlobBytes: 1000, strategy: { name: 'fedavg' }, audit: {} },
  createdAt: 0,
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
});
