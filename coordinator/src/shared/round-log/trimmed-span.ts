import type { Redis } from 'ioredis';
import {
  FlotillaError,
  isTreeHeadLine,
  roundLogLeafHash,
  sameHash,
  type RoundLogRecord,
} from '@flotilla/protocol';
import { roundLogKeys } from './keys.js';
import { parseRawLine, readMirrorLines, type RawLogLine } from './mirror-read.js';
import { readTreeNodes } from './tree-nodes.js';

// Lines trimmed from the Redis stream, read back from a mirror file without trusting it: each
// record must be the leaf the log's Merkle tree holds in Redis (the tree is never trimmed), the
// seqs must follow on, and where the file meets the stream its line must equal the stream's.

/** Where the trimmed lines can be found, for error messages. */
async function mirrorsHint(redis: Redis, prefix: string): Promise<string> {
  const ids = await redis.hkeys(roundLogKeys(prefix).mirrors);
  return ids.length > 0
    ? `the mirror files registered for this log hold them: ${ids.sort().join(', ')}`
    : 'no mirror file is registered for this log';
}

/**
 * Lines `from`..`through` (all below the stream's first line `boundary`) out of the mirror,
 * checked: every seq present in order, and where the span meets the stream, the mirror's line
 * equal byte for byte to the stream's (the file is this log's mirror, not another's).
 */
export async function trimmedSpan(
  redis: Redis,
  prefix: string,
  span: { from: number; through: number; boundary: RawLogLine },
  mirrorPath: string | undefined,
): Promise<RawLogLine[]> {
  const { from, through, boundary } = span;
  const trimmed = `round-log lines ${from}-${boundary.seq - 1} were trimmed from Redis`;
  if (mirrorPath === undefined)
    throw new FlotillaError('NOT_FOUND', `${trimmed}; ${await mirrorsHint(redis, prefix)}`);
  const reachesBoundary = through === boundary.seq - 1;
  const lines = await readMirrorLines(mirrorPath, from, reachesBoundary ? boundary.seq : through);
  const wanted = lines.filter((line) => line.seq <= through);
  wanted.forEach((line, i) => {
    if (line.seq !== from + i)
      throw new FlotillaError(
        'CORRUPT_FILE',
        `${mirrorPath} lacks line ${from + i} (it holds ${line.seq} next)`,
      );
  });
  if (wanted.length !== through - from + 1)
    throw new FlotillaError(
      'NOT_FOUND',
      `${trimmed} and ${mirrorPath} holds them only up to ${wanted.at(-1)?.seq ?? from - 1}; ${await mirrorsHint(redis, prefix)}`,
    );
  await checkAgainstTree(redis, prefix, wanted, mirrorPath);
  const handOver = lines.find((line) => line.seq === boundary.seq);
  if (handOver && handOver.line !== boundary.line)
    throw new FlotillaError(
      'CORRUPT_FILE',
      `${mirrorPath} differs from the Redis stream at line ${boundary.seq}: it is not this log's mirror, or it was edited`,
    );
  return wanted;
}

/** Each record's leaf hash must be the one stored in the tree (one read for the span). */
async function checkAgainstTree(
  redis: Redis,
  prefix: string,
  lines: RawLogLine[],
  mirrorPath: string,
): Promise<void> {
  const records = lines.map(parseRawLine).filter((line): line is RoundLogRecord => !isTreeHeadLine(line));
  if (records.length === 0) return;
  const stored = await readTreeNodes(
    redis,
    prefix,
    records.map((record) => ({ level: 0, index: record.leafIndex })),
    mirrorPath,
  );
  records.forEach((record, i) => {
    const leaf = stored[i];
    if (!leaf || !sameHash(roundLogLeafHash(record), leaf))
      throw new FlotillaError(
        'CORRUPT_FILE',
        `${mirrorPath} line ${record.seq} is not the record the log's Merkle tree holds: the file was edited, or is another log's mirror`,
      );
  });
}
