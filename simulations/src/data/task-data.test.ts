import { describe, expect, it } from 'vitest';
import { createRng } from '../rng/random.js';
import { labeledData } from './files/labeled.js';
import { LEAF_LETTERS } from './files/leaf.js';
import { taskFromFiles } from './task-data.js';
import { TEXT_STYLES, makeTextTask } from './text-task.js';

/** n examples whose single feature is their own index, split over users of `perUser` examples. */
function indexed(n: number, perUser: number | null) {
  const users =
    perUser === null
      ? null
      : {
          ids: Array.from({ length: n / perUser }, (_, u) => `user-${u}`),
          indices: Array.from({ length: n / perUser }, (_, u) =>
            Array.from({ length: perUser }, (_, k) => u * perUser + k),
          ),
        };
  return labeledData({
    xs: Float32Array.from({ length: n }, (_, i) => i),
    ys: Int32Array.from({ length: n }, (_, i) => i % 2),
    shape: [1],
    classNames: null,
    users,
  });
}

const ids = (data: { xs: Float32Array }) => [...data.xs];

describe('taskFromFiles', () => {
  const options = {
    pretrainFraction: 0.2,
    testFraction: 0.2,
    holdoutFraction: 0.1,
    description: 'd',
    vocabularySize: null,
    kind: 'vector' as const,
  };

  it('splits per-user data by user: pre-training, test and holdout users apart from the devices’ users', () => {
    const data = indexed(100, 10);
    const task = taskFromFiles(data, null, { ...options, rng: createRng(1) });
    // 10 users: 2 pre-train, 2 test, 1 holdout, 5 devices — each user's examples stay together.
    const userOf = (i: number) => Math.floor(i / 10);
    const usersIn = (values: number[]) => new Set(values.map(userOf));
    expect(usersIn(ids(task.pretrain)).size).toBe(2);
    expect(usersIn(ids(task.test)).size).toBe(2);
    expect(usersIn(ids(task.holdout)).size).toBe(1);
    expect(task.users?.ids).toHaveLength(5);
    const groups = [ids(task.pretrain), ids(task.test), ids(task.holdout), ids(task.pool)].map(usersIn);
    const all = groups.flatMap((g) => [...g]);
    expect(new Set(all).size).toBe(all.length);
    // Device users keep the files' order; their indices point into the pool.
    const order = task.users?.ids.map((id) => Number(id.slice(5))) ?? [];
    expect(order).toEqual([...order].sort((a, b) => a - b));
    task.users?.indices.forEach((rows, d) => {
      expect(rows.map((r) => userOf(task.pool.xs[r] ?? -1))).toEqual(rows.map(() => order[d]));
    });
    // Same seed, same split.
    expect(ids(taskFromFiles(data, null, { ...options, rng: createRng(1) }).pool)).toEqual(ids(task.pool));
  });

  it('splits other data by example, and takes evaluation from test files when given', () => {
    const task = taskFromFiles(indexed(50, null), null, { ...options, rng: createRng(2) });
    expect([task.pretrain.n, task.test.n, task.holdout.n, task.pool.n]).toEqual([10, 10, 5, 25]);
    expect(task.users).toBeNull();
    const withTest = taskFromFiles(indexed(50, 10), indexed(30, null), {
      ...options,
      maxUsers: 3,
      rng: createRng(2),
    });
    expect([withTest.holdout.n, withTest.test.n]).toEqual([10, 20]);
    expect(withTest.users?.ids).toHaveLength(3);
  });

  it('says when no user is left for the devices', () => {
    expect(() => taskFromFiles(indexed(20, 10), null, { ...options, rng: createRng(3) })).toThrow(
      /none is left for devices/,
    );
  });
});

describe('the built-in text task', () => {
  const text = (seed: number) =>
    makeTextTask({
      rng: createRng(seed),
      devices: 5,
      styles: 3,
      sequenceLength: 12,
      examplesPerDevice: 20,
      pretrainExamples: 50,
      evaluationExamplesPerStyle: 10,
    });
  const decode = (data: { xs: Float32Array }, row: number, length: number) =>
    [...data.xs.subarray(row * length, (row + 1) * length)].map((i) => LEAF_LETTERS[i]).join('');

  it('labels every window with the character that follows it, in LEAF’s alphabet', () => {
    const task = text(1);
    expect(task.pool.n).toBe(100);
    expect(task.pool.numClasses).toBe(80);
    // Windows are 3 characters apart: window k+1 starts 3 characters into window k.
    const first = decode(task.pool, 0, 12);
    const second = decode(task.pool, 1, 12);
    expect(second.slice(0, 9)).toBe(first.slice(3));
    expect(LEAF_LETTERS[task.pool.ys[0] ?? -1]).toBe(second[9]);
    expect(task.users.indices[4]).toEqual(Array.from({ length: 20 }, (_, k) => 80 + k));
  });

  it('gives device d the style d mod styles, and is a function of the seed', () => {
    const task = text(2);
    const writing = (d: number) =>
      Array.from({ length: 20 }, (_, k) => decode(task.pool, d * 20 + k, 12)).join('');
    expect(writing(1)).toBe(writing(1).toUpperCase()); // shouting
    expect(writing(4)).toBe(writing(4).toUpperCase()); // 4 mod 3 = 1: shouting too
    expect(writing(0)).toMatch(/[a-z]/);
    expect(TEXT_STYLES.map((s) => s.name).slice(0, 3)).toEqual(['archaic', 'shouting', 'texting']);
    expect([...text(2).pool.xs]).toEqual([...task.pool.xs]);
    expect([...text(3).pool.xs]).not.toEqual([...task.pool.xs]);
  });
});
