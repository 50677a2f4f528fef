import type { Redis } from 'ioredis';
import type { CommandResult } from './cli.js';
import { removeRoundLogMirror, roundLogStorage } from './trim.js';

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
  const storage = await roundLogStorage(redis, prefix);
  const now = options.now ?? Date.now();
  const lines = [
    `round log "${prefix}": ${storage.lines} lines; the Redis stream holds ${storage.streamLines}` +
      (storage.streamFirst !== null ? ` (from line ${storage.streamFirst})` : ''),
  ];
  if (storage.mirrors.length === 0) lines.push('no mirror registered: nothing is trimmed');
  for (const mirror of storage.mirrors)
    lines.push(
      `${mirror.mirrorId}  through line ${mirror.seq} (${mirror.behind} behind), synced ${Math.round((now - mirror.at) / 1000)} s ago`,
    );
  return { exitCode: 0, output: `${lines.join('\n')}\n` };
}
