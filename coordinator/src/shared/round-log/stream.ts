import type { Redis } from 'ioredis';
import { FlotillaError, isTreeHeadLine, type RoundLogLine, type RoundLogRecord } from '@flotilla/protocol';
import { roundLogKeys, streamIdOf } from './keys.js';
import { parseRawLine, type RawLogLine } from './mirror-read.js';
import { trimmedSpan } from './trimmed-span.js';

// Reading the log. The Redis stream holds the newest lines; older ones may have been trimmed
// from it once every registered mirror file held them (trim.ts). A read that reaches below the
// stream's first line takes those lines from this process's mirror, checked against the Merkle
// tree, for seq continuity and for a byte-identical hand-over at the boundary (trimmed-span.ts),
// or fails saying where they are: a reader never gets silently fewer or other lines.

/** Largest page read from the stream at once. */
const PAGE = 500;

export interface ReadRoundLogOptions {
  /** First seq to return; default 0. */
  from?: number;
  /** Most lines to return; default all. */
  limit?: number;
  /**
   * This process's JSONL mirror (e.g. `defaultRoundLogPath(stateDir)`): lines trimmed from the
   * stream are read from it. Without it, reading a trimmed line fails (`NOT_FOUND`, naming the
   * registered mirrors).
   */
  mirrorPath?: string;
}

const isRecord = (line: RoundLogLine): line is RoundLogRecord => !isTreeHeadLine(line);

/**
 * Reads the records (not the tree heads) in log order, from line `from`.
 * Entries are validated against the schema (not verified: that is `verifyRoundLog`'s job).
 */
export async function readRoundLog(
  redis: Redis,
  prefix: string,
  options: ReadRoundLogOptions = {},
): Promise<RoundLogRecord[]> {
  return (await readRoundLogEntries(redis, prefix, options)).filter(isRecord);
}

/**
 * Reads every line, records and tree heads, in log order: what `verifyRoundLog` takes. `limit`
 * counts lines.
 */
export async function readRoundLogEntries(
  redis: Redis,
  prefix: string,
  options: ReadRoundLogOptions = {},
): Promise<RoundLogLine[]> {
  const { from = 0, ...rest } = options;
  return (await readRoundLogLines(redis, prefix, from - 1, rest)).map(parseRawLine);
}

/** Stream entries from `from` on, at most `count`, as raw lines. */
async function streamPage(redis: Redis, key: string, from: number, count: number): Promise<RawLogLine[]> {
  const entries = await redis.xrange(key, streamIdOf(from), '+', 'COUNT', count);
  return entries.map(([id, fields]) => {
    const index = fields.indexOf('record');
    const line = index >= 0 ? fields[index + 1] : undefined;
    if (line === undefined)
      throw new FlotillaError('CORRUPT_FILE', `round-log stream entry ${id} has no record`);
    return { seq: Number(id.slice(2)) - 1, line };
  });
}

/**
 * Raw JSON lines after `afterSeq`, byte-identical to what was appended (for the mirror and
 * `flotilla audit export`). Lines trimmed from the stream come from `options.mirrorPath`.
 */
export async function readRoundLogLines(
  redis: Redis,
  prefix: string,
  afterSeq: number,
  options: Omit<ReadRoundLogOptions, 'from'> = {},
): Promise<RawLogLine[]> {
  const key = roundLogKeys(prefix).stream;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const out: RawLogLine[] = [];
  let from = Math.max(0, afterSeq + 1);
  while (out.length < limit) {
    const want = Math.min(PAGE, limit - out.length);
    const page = await streamPage(redis, key, from, want);
    const first = page[0];
    if (first === undefined) break;
    // Below the stream's first line (trimmed, possibly between two pages of this read).
    if (first.seq > from) {
      const through = Math.min(first.seq - 1, from + want - 1);
      out.push(...(await trimmedSpan(redis, prefix, { from, through, boundary: first }, options.mirrorPath)));
      from = through + 1;
      continue;
    }
    page.forEach((line, i) => {
      if (line.seq !== from + i)
        throw new FlotillaError(
          'INTERNAL',
          `round-log stream has line ${line.seq} where ${from + i} was expected`,
        );
    });
    out.push(...page);
    if (page.length < want) break;
    from += page.length;
  }
  return out;
}
