import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readMirrorLines } from './mirror-read.js';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-mirror-read-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Lines of very different sizes, some longer than the 64 KiB read chunk (a `round.selected` of
// thousands of devices is), so probes land inside long lines and lines span chunks.
const sizes = Array.from({ length: 400 }, (_, seq) => (seq % 97 === 5 ? 150_000 : (seq * 7919) % 3000));
const lines = sizes.map((size, seq) => JSON.stringify({ seq, pad: 'x'.repeat(size) }));

describe('readMirrorLines', () => {
  it('returns exactly the lines of any seq range of a multi-MB mirror', async () => {
    const file = join(dir, 'mirror.jsonl');
    writeFileSync(file, lines.map((l) => `${l}\n`).join(''));
    for (const [from, through] of [
      [0, 0],
      [0, 9],
      [5, 5],
      [6, 110],
      [199, 203],
      [391, 399],
      [399, 399],
      [395, 1000],
    ] as const) {
      const read = await readMirrorLines(file, from, through);
      expect(read.map((l) => l.seq)).toEqual(
        Array.from({ length: Math.min(through, 399) - from + 1 }, (_, i) => from + i),
      );
      expect(read.map((l) => l.line)).toEqual(lines.slice(from, through + 1));
    }
    expect(await readMirrorLines(file, 400, 410)).toEqual([]);
  });

  it('leaves out a torn last line, and says which file it cannot read', async () => {
    const file = join(dir, 'torn.jsonl');
    writeFileSync(
      file,
      lines
        .slice(0, 20)
        .map((l) => `${l}\n`)
        .join(''),
    );
    appendFileSync(file, '{"seq":20,"pad":"xx');
    expect((await readMirrorLines(file, 15, 25)).map((l) => l.seq)).toEqual([15, 16, 17, 18, 19]);
    await expect(readMirrorLines(join(dir, 'absent.jsonl'), 0, 1)).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringContaining('absent.jsonl') as string,
    });
  });
});
