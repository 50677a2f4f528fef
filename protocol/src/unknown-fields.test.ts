import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TaskDefinitionSchema, describeTaskIssues } from './messages/task.js';
import { safeParseStrict, unknownFieldIssues } from './unknown-fields.js';

const task = {
  taskId: 'strict-task',
  baseModel: { digest: 'a'.repeat(64), format: 'tfjs-layers-bundle', bytes: 10 },
  adapter: { mode: 'lora', targetModules: ['hidden'] },
  moduleShapes: { hidden: { in: 4, out: 2 } },
  rounds: { goalCount: 3, training: { learningRate: 0.1 } },
  policy: { clipNorm: 1, strategy: { name: 'krum', byzantine: 1 } },
};

describe('unknown fields', () => {
  it('a task as written parses; a typo anywhere is refused, naming its path', () => {
    expect(safeParseStrict(TaskDefinitionSchema, task).success).toBe(true);
    const typo = { ...task, policy: { ...task.policy, strategy: { name: 'krum', byzantin: 1 } } };
    // Without the check the typo is dropped and the default (byzantine: 0) silently used.
    expect(TaskDefinitionSchema.safeParse(typo).success).toBe(true);
    const result = safeParseStrict(TaskDefinitionSchema, typo);
    expect(result.success).toBe(false);
    if (!result.success)
      expect(describeTaskIssues(result.error)).toBe('policy.strategy: Unrecognized key: "byzantin"');
  });

  it('looks inside records, arrays, optional and defaulted objects and the chosen union option', () => {
    const value = {
      ...task,
      moduleShapes: { hidden: { in: 4, out: 2, inn: 4 } },
      rounds: { ...task.rounds, training: { learningRate: 0.1, epoch: 2 } },
      policy: { ...task.policy, weighting: { rule: 'capped', cap: 5, capp: 6 }, audit: { madTreshold: 3 } },
      extra: true,
    };
    const found = unknownFieldIssues(TaskDefinitionSchema, value).map(
      (i) => `${i.path.join('.')}: ${i.keys.join(',')}`,
    );
    expect(found.sort()).toEqual([
      ': extra',
      'moduleShapes.hidden: inn',
      'policy.audit: madTreshold',
      'policy.weighting: capp',
      'rounds.training: epoch',
    ]);
    const list = z.array(z.object({ a: z.number() }));
    expect(unknownFieldIssues(list, [{ a: 1 }, { a: 2, b: 3 }])[0]?.path).toEqual([1]);
  });

  it('leaves loose objects alone and does not repeat what a strict object reports itself', () => {
    expect(unknownFieldIssues(z.object({ a: z.number() }).loose(), { a: 1, b: 2 })).toEqual([]);
    const strict = safeParseStrict(z.object({ a: z.number() }).strict(), { a: 1, b: 2 });
    expect(strict.success ? [] : strict.error.issues.map((i) => i.code)).toEqual(['unrecognized_keys']);
  });

  it('keeps the schema errors beside the unknown fields', () => {
    const result = safeParseStrict(TaskDefinitionSchema, { ...task, rounds: { training: {} }, tpyo: 1 });
    expect(result.success).toBe(false);
    if (!result.success) {
      const text = describeTaskIssues(result.error);
      expect(text).toContain('(task): Unrecognized key: "tpyo"');
      expect(text).toContain('rounds.goalCount:');
      expect(text).toContain('rounds.training.learningRate:');
    }
  });
});
