import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../canonical-json.js';
import {
  BLOB_HEADER_ALLOWANCE_BYTES,
  TaskDefinitionSchema,
  defaultMaxBlobBytes,
  defaultMinReports,
  describeTaskIssues,
} from './task.js';

const minimal = {
  taskId: 't',
  baseModel: { digest: 'ab'.repeat(32), format: 'tfjs-layers-bundle', bytes: 10 },
  adapter: { mode: 'lora', targetModules: ['a', 'b'] },
  moduleShapes: { a: { in: 4, out: 8 }, b: { in: 8, out: 3 } },
  rounds: { goalCount: 10, training: { learningRate: 0.1 } },
  policy: { clipNorm: 1 },
  createdAt: 1,
};

describe('task definition defaults', () => {
  it('defaultMinReports: floor(minGoalFraction × goalCount / overSelection), at least 1', () => {
    const at = (goalCount: number, minGoalFraction = 0.8, overSelection = 1.3) =>
      defaultMinReports({ goalCount, minGoalFraction, overSelection });
    expect([1, 2, 3, 5, 10, 20, 100].map((g) => at(g))).toEqual([1, 1, 1, 3, 6, 12, 61]);
    // No over-selection and the whole goal needed to start: the quorum is the goal.
    expect(at(10, 1, 1)).toBe(10);
  });

  it('defaultMaxBlobBytes: 4 bytes per adapter value plus the header allowance', () => {
    const shapes = { a: { in: 4, out: 8 }, b: { in: 8, out: 3 } };
    const spec = (mode: 'lora' | 'ffa-lora' | 'bias' | 'full') => ({
      mode,
      targetModules: ['a', 'b'],
      r: 2,
      alpha: 4,
      seed: 0,
    });
    // A [2, in] + B [out, 2] per module: 2·(4+8) + 2·(8+3) = 46 values
    expect(defaultMaxBlobBytes(spec('lora'), shapes)).toBe(4 * 46 + BLOB_HEADER_ALLOWANCE_BYTES);
    expect(defaultMaxBlobBytes(spec('ffa-lora'), shapes)).toBe(4 * 46 + BLOB_HEADER_ALLOWANCE_BYTES);
    // bias [out]: 8 + 3
    expect(defaultMaxBlobBytes(spec('bias'), shapes)).toBe(4 * 11 + BLOB_HEADER_ALLOWANCE_BYTES);
    // kernel [out, in] + bias [out]: 32 + 8 + 24 + 3
    expect(defaultMaxBlobBytes(spec('full'), shapes)).toBe(4 * 67 + BLOB_HEADER_ALLOWANCE_BYTES);
    expect(defaultMaxBlobBytes(spec('lora'), { a: shapes.a })).toBeNull();
  });

  it('fills every default, and a parsed task parses to the same bytes (its signature stays valid)', () => {
    const task = TaskDefinitionSchema.parse(minimal);
    expect(task.rounds.minReports).toBe(6);
    expect(task.policy.allowedModules).toEqual(['a', 'b']);
    expect(task.policy.maxBlobBytes).toBe(4 * 8 * (4 + 8 + 8 + 3) + BLOB_HEADER_ALLOWANCE_BYTES);
    expect(task.rounds.training).toEqual({
      epochs: 1,
      batchSize: 32,
      learningRate: 0.1,
      fedProxMu: 0,
      optimizer: 'sgd',
    });
    expect(canonicalJson(TaskDefinitionSchema.parse(task))).toBe(canonicalJson(task));
  });

  it('keeps what is given', () => {
    const given = {
      ...minimal,
      rounds: { ...minimal.rounds, minReports: 9 },
      policy: { clipNorm: 1, allowedModules: ['a', 'b', 'c'], maxBlobBytes: 1000 },
    };
    const task = TaskDefinitionSchema.parse(given);
    expect(task.rounds.minReports).toBe(9);
    expect(task.policy).toMatchObject({ allowedModules: ['a', 'b', 'c'], maxBlobBytes: 1000 });
  });

  it('names each failing field', () => {
    const noShapes = TaskDefinitionSchema.safeParse({ ...minimal, moduleShapes: undefined });
    expect(noShapes.success).toBe(false);
    if (!noShapes.success)
      expect(describeTaskIssues(noShapes.error)).toBe(
        'policy.maxBlobBytes: is required when moduleShapes does not give the shape of every target module',
      );
    const bad = TaskDefinitionSchema.safeParse({
      ...minimal,
      rounds: { goalCount: 0, training: {} },
      policy: { clipNorm: 1, strategy: { name: 'fedsgd' } },
    });
    expect(bad.success).toBe(false);
    if (!bad.success)
      expect(
        describeTaskIssues(bad.error)
          .split('; ')
          .map((issue) => issue.split(':')[0]),
      ).toEqual(['rounds.goalCount', 'rounds.training.learningRate', 'policy.strategy.name']);
  });
});
