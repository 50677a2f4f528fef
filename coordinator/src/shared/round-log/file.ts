import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Redis } from 'ioredis';
import { readRoundLogLines } from './stream.js';

export interface RoundLogFileContents {
  /** One entry per non-empty line, in file order; null where the line is not JSON. */
  records: unknown[];
  /** Lines that are not JSON: 1-based line number and the record position they stand for. */
  corruptLines: Array<{ line: number; position: number; message: string }>;
  /** 1-based file line of each record position. */
  lineOf: number[];
}

/** Reads a JSONL round log without trusting it: a corrupt line is reported, never thrown. */
export async function readRoundLogFile(path: string): Promise<RoundLogFileContents> {
  const text = await readFile(path, 'utf8');
  const records: unknown[] = [];
  const corruptLines: RoundLogFileContents['corruptLines'] = [];
  const lineOf: number[] = [];
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    lineOf.push(index + 1);
    try {
      records.push(JSON.parse(line) as unknown);
    } catch (error) {
      corruptLines.push({
        line: index + 1,
        position: records.length,
        message: error instanceof Error ? error.message : 'invalid JSON',
      });
      records.push(null);
    }
  });
  return { records, corruptLines, lineOf };
}

/**
 * Writes the whole log from the Redis stream to `toFile` as JSONL (atomically: temp file, fsync,
 * rename). Returns the number of lines (records and tree heads). For `flotilla audit export`.
 * Lines trimmed from the stream come from `options.mirrorPath` (checked against the stream); with
 * none, or one that lacks them, the export fails saying where they are.
 */
export async function exportRoundLog(
  redis: Redis,
  prefix: string,
  toFile: string,
  options: { mirrorPath?: string } = {},
): Promise<number> {
  const lines = await readRoundLogLines(redis, prefix, -1, options);
  await mkdir(dirname(toFile), { recursive: true, mode: 0o700 });
  const temp = `${toFile}.${process.pid}.tmp`;
  // Owner-only like the mirror; whoever hands it to an auditor widens it on purpose.
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writeFile(lines.map(({ line }) => `${line}\n`).join(''));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, toFile);
  return lines.length;
}
