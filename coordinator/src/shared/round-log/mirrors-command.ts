import type { Redis } from 'ioredis';
import type { CommandResult } from './cli.js';
import { roundLogKeys } from './keys.js';
import { parseLogState } from './tree-store.js';
import { listRoundLogMirrors, removeRoundLogMirror } from './trim.js';

// `flotilla audit mirrors [--remove <id>]`: which JSONL mirrors hold the round log, how far each
// has synced, and what the Redis stream still holds. A mirror whose host is gone for good keeps
// every later line in Redis until its entry is removed here (docs/reliability.md).

export interface AuditMirrorsOptions {
  redis: Redis;
  /** Redis key prefix; default in Flotilla `flotilla`. */
  prefix: string;
  /** A mirror id (as listed) to forget. */
  remove?: string;
  /** Clock, epoch ms; default Date.now. */
  now?: number;
}

export async function auditMirrorsCommand(options: AuditMirrorsOptions): Promise<CommandResult> {
  const { redis, prefix } = options;
  if (options.remove !== undefined) {
    const removed = await removeRoundLogMirror(redis, prefix, options.remove);
    return removed
      ? {
          exitCode: 0,
          output: `removed mirror ${options.remove}: it no longer holds lines in Redis (a process still writing it registers it again)\n`,
        }
      : { exitCode: 1, output: `no mirror ${options.remove} is registered under prefix "${prefix}"\n` };
  }
  const keys = roundLogKeys(prefix);
  const state = parseLogState(await redis.get(keys.head), keys.head);
  const last = state?.seq ?? -1;
  const [first] = await redis.xrange(keys.stream, '-', '+', 'COUNT', 1);
  const length = await redis.xlen(keys.stream);
  const now = options.now ?? Date.now();
  const lines = [
    `round log "${prefix}": ${last + 1} lines; the Redis stream holds ${length}` +
      (first ? ` (from line ${Number(first[0].slice(2)) - 1})` : ''),
  ];
  const mirrors = await listRoundLogMirrors(redis, prefix);
  if (mirrors.length === 0) lines.push('no mirror registered: nothing is trimmed');
  for (const mirror of mirrors)
    lines.push(
      `${mirror.mirrorId}  through line ${mirror.seq} (${last - mirror.seq} behind), synced ${Math.round((now - mirror.at) / 1000)} s ago`,
    );
  return { exitCode: 0, output: `${lines.join('\n')}\n` };
}
