import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCsvDataset, parseCsv } from './csv.js';

describe('parseCsv', () => {
  it('follows RFC 4180: quoted delimiters, line breaks and doubled quotes, CRLF', () => {
    const text = 'a,b,c\r\n1,"x, y",3\r\n"multi\nline","say ""hi""",\r\n';
    expect(parseCsv(text)).toEqual([
      ['a', 'b', 'c'],
      ['1', 'x, y', '3'],
      ['multi\nline', 'say "hi"', ''],
    ]);
    expect(parseCsv('a;b\n1;2', ';')).toEqual([
      ['a', 'b'],
      ['1', '2'],
    ]);
    expect(() => parseCsv('a\n"open')).toThrow(/not closed/);
  });
});

describe('loadCsvDataset', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-csv-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips a generated table with named classes and a user column', () => {
    const rows = [
      { writer: 'w2', a: 0.5, b: -1, species: 'setosa' },
      { writer: 'w1', a: 1.25, b: 2, species: 'virginica' },
      { writer: 'w2', a: 3, b: 1e-3, species: 'versicolor' },
      { writer: 'w1', a: -0.5, b: 7, species: 'setosa' },
    ];
    const text = ['writer,a,b,species', ...rows.map((r) => `${r.writer},${r.a},${r.b},"${r.species}"`)].join(
      '\n',
    );
    writeFileSync(join(dir, 'iris.csv'), `${text}\n`);
    const data = loadCsvDataset({ path: join(dir, 'iris.csv'), label: 'species', user: 'writer' });
    expect(data.shape).toEqual([2]);
    expect([...data.xs]).toEqual(rows.flatMap((r) => [r.a, Math.fround(r.b)]));
    // Class indices follow the sorted names, not the order of appearance.
    expect(data.classNames).toEqual(['setosa', 'versicolor', 'virginica']);
    expect([...data.ys]).toEqual([0, 2, 1, 0]);
    expect(data.users).toEqual({
      ids: ['w2', 'w1'],
      indices: [
        [0, 2],
        [1, 3],
      ],
    });
  });

  it('takes the last column as the label by default, and integer labels as they are', () => {
    writeFileSync(join(dir, 'plain.csv'), 'f1,f2,label\n1,2,3\n4,5,0\n');
    const data = loadCsvDataset({ path: join(dir, 'plain.csv') });
    expect([...data.ys]).toEqual([3, 0]);
    expect(data.numClasses).toBe(4);
    expect(data.classNames).toBeNull();
    expect(data.users).toBeNull();
  });

  it('names the row and column of a value that is not a number', () => {
    writeFileSync(join(dir, 'bad.csv'), 'f1,f2,label\n1,2,0\n1,oops,1\n');
    expect(() => loadCsvDataset({ path: join(dir, 'bad.csv') })).toThrow(
      /row 3, column f2: "oops" is not a number/,
    );
    expect(() => loadCsvDataset({ path: join(dir, 'bad.csv'), label: 'missing' })).toThrow(
      /no label column "missing" \(columns: f1, f2, label\)/,
    );
  });
});
