import type { Redis } from 'ioredis';
import {
  FlotillaError,
  RoundLogLineSchema,
  isTreeHeadLine,
  type RoundLogLine,
  type RoundLogRecord,
} from '@flotilla/protocol';
import { roundLogKeys, streamIdOf } from './keys.js';

/** Largest page read from the stream at once. */
const PAGE = 500;

export interface ReadRoundLogOptions {
  /** First seq to return; default 0. */
  from?: number;
  /** Most records to return; default all. */
  limit?: number;
}

function parseEntry(fields: string[], id: string): RoundLogLine {
  const index = fields.indexOf('record');
  const json = index >= 0 ? fields[index + 1] : undefined;
  if (json === undefined)
    throw new FlotillaError('CORRUPT_FILE', `round-log stream entry ${id} has no record`);
  const parsed = RoundLogLineSchema.safeParse(JSON.parse(json));
  if (!parsed.success)
    throw new FlotillaError(
      'CORRUPT_FILE',
      `round-log stream entry ${id} is not a valid record or tree head`,
    );
  return parsed.data;
}

const isRecord = (line: RoundLogLine): line is RoundLogRecord => !isTreeHeadLine(line);

/**
 * Reads the records (not the tree heads) from the Redis stream in log order, from line `from`.
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
  const key = roundLogKeys(prefix).stream;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const out: RoundLogLine[] = [];
  let start = streamIdOf(Math.max(0, options.from ?? 0));
  while (out.length < limit) {
    const count = Math.min(PAGE, limit - out.length);
    const entries = await redis.xrange(key, start, '+', 'COUNT', count);
    for (const [id, fields] of entries) out.push(parseEntry(fields, id));
    const last = out.at(-1);
    if (entries.length < count || !last) break;
    start = streamIdOf(last.seq + 1);
  }
  return out;
}

/** Raw JSON lines of the records after `afterSeq` (for the mirror: byte-identical to the stream). */
export async function readRoundLogLines(
  redis: Redis,
  prefix: string,
  afterSeq: number,
): Promise<Array<{ seq: number; line: string }>> {
  const key = roundLogKeys(prefix).stream;
  const out: Array<{ seq: number; line: string }> = [];
  let start = streamIdOf(afterSeq + 1);
  for (;;) {
    const entries = await redis.xrange(key, start, '+', 'COUNT', PAGE);
    for (const [id, fields] of entries) {
      const index = fields.indexOf('record');
      const line = index >= 0 ? fields[index + 1] : undefined;
      if (line === undefined)
        throw new FlotillaError('CORRUPT_FILE', `round-log stream entry ${id} has no record`);
      out.push({ seq: Number(id.slice(2)) - 1, line });
    }
    const last = out.at(-1);
    if (entries.length < PAGE || !last) return out;
    start = streamIdOf(last.seq + 1);
  }
}
