import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  LEAF_LETTERS,
  SENT140_UNKNOWN,
  leafFiles,
  leafToDataset,
  readLeafFiles,
  sent140Vocabulary,
  splitWords,
} from './leaf.js';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-leaf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes a file the way LEAF's preprocessing does: users, num_samples, user_data. */
function writeLeaf(path: string, data: Record<string, { x: unknown[]; y: unknown[] }>): void {
  const users = Object.keys(data);
  writeFileSync(
    path,
    JSON.stringify({ users, num_samples: users.map((u) => data[u]?.x.length ?? 0), user_data: data }),
  );
}

describe('LEAF loaders', () => {
  it("use LEAF's 80-character Shakespeare alphabet", () => {
    expect(LEAF_LETTERS).toHaveLength(80);
    expect(LEAF_LETTERS.indexOf('\n')).toBe(0);
    expect(LEAF_LETTERS.indexOf('A')).toBe(25);
    expect(LEAF_LETTERS.indexOf('a')).toBe(53);
    expect(LEAF_LETTERS.indexOf('}')).toBe(79);
  });

  it('round-trip FEMNIST files split over several JSON files, one device per writer', () => {
    const femnist = join(dir, 'femnist', 'train');
    mkdirSync(femnist, { recursive: true });
    const image = (v: number) => Array.from({ length: 784 }, (_, i) => (i % 7 === 0 ? v : 1));
    writeLeaf(join(femnist, 'all_data_0.json'), {
      f0001_41: { x: [image(0.1), image(0.2)], y: [3, 61] },
      f0002_07: { x: [image(0.3)], y: [10] },
    });
    writeLeaf(join(femnist, 'all_data_1.json'), { f0003_12: { x: [image(0.4)], y: [0] } });
    const files = leafFiles(femnist);
    expect(files.map((f) => f.slice(femnist.length + 1))).toEqual(['all_data_0.json', 'all_data_1.json']);
    const data = leafToDataset(readLeafFiles(files), { task: 'femnist' });
    expect(data.shape).toEqual([28, 28, 1]);
    expect(data.n).toBe(4);
    expect(data.numClasses).toBe(62);
    expect([...data.ys]).toEqual([3, 61, 10, 0]);
    expect(data.xs[784]).toBeCloseTo(0.2);
    expect(data.xs[785]).toBe(1);
    expect(data.users).toEqual({ ids: ['f0001_41', 'f0002_07', 'f0003_12'], indices: [[0, 1], [2], [3]] });
  });

  it('round-trip Shakespeare: 80 characters in, the next character out, as alphabet indices', () => {
    const line = 'ROMEO. But soft, what light through yonder window breaks? It is the east, and Ju';
    expect(line).toHaveLength(80);
    writeLeaf(join(dir, 'shakespeare.json'), {
      THE_TRAGEDY_OF_ROMEO_AND_JULIET_ROMEO: { x: [line], y: ['l'] },
    });
    const data = leafToDataset(readLeafFiles([join(dir, 'shakespeare.json')]), { task: 'shakespeare' });
    expect(data.shape).toEqual([80]);
    expect(data.numClasses).toBe(80);
    expect([...data.xs].map((i) => LEAF_LETTERS[i]).join('')).toBe(line);
    expect(data.ys[0]).toBe(LEAF_LETTERS.indexOf('l'));
    writeLeaf(join(dir, 'bad.json'), { u: { x: [`${line.slice(0, 79)}é`], y: ['a'] } });
    expect(() => leafToDataset(readLeafFiles([join(dir, 'bad.json')]), { task: 'shakespeare' })).toThrow(
      /not in LEAF's alphabet/,
    );
  });

  it('round-trip Sent140: tweet text split as LEAF does, 25 word ids, vocabulary from the data', () => {
    expect(splitWords("I can't wait!! see you, ok?")).toEqual([
      'I',
      "can't",
      'wait',
      '!',
      '!',
      'see',
      'you',
      ',',
      'ok',
      '?',
    ]);
    const tweets = [
      ['1467810369', 'Mon Apr 06 22:19:45 PDT 2009', 'NO_QUERY', 'alice', 'so happy today, so happy!'],
      ['1467810672', 'Mon Apr 06 22:19:49 PDT 2009', 'NO_QUERY', 'bob', 'sad and tired'],
    ];
    writeLeaf(join(dir, 'sent140.json'), {
      alice: { x: [tweets[0]], y: [1] },
      bob: { x: [tweets[1]], y: [0] },
    });
    const file = readLeafFiles([join(dir, 'sent140.json')]);
    const vocabulary = sent140Vocabulary(['so happy today, so happy!', 'sad and tired'], 4);
    // By frequency (happy and so twice), ties alphabetical.
    expect(vocabulary).toEqual(['happy', 'so', '!', ',']);
    const data = leafToDataset(file, { task: 'sent140', vocabulary });
    expect(data.shape).toEqual([25]);
    expect([...data.xs.subarray(0, 8)]).toEqual([3, 2, SENT140_UNKNOWN, 5, 3, 2, 4, 0]);
    expect([...data.xs.subarray(25, 29)]).toEqual([SENT140_UNKNOWN, SENT140_UNKNOWN, SENT140_UNKNOWN, 0]);
    expect([...data.ys]).toEqual([1, 0]);
    expect(data.users?.ids).toEqual(['alice', 'bob']);
  });

  it('refuse a file that is not in LEAF format, naming it', () => {
    writeFileSync(join(dir, 'other.json'), JSON.stringify({ users: ['a'] }));
    expect(() => readLeafFiles([join(dir, 'other.json')])).toThrow(/other\.json: not a LEAF file/);
    expect(() => leafFiles(join(dir, 'missing'))).toThrow(/does not exist/);
  });
});
