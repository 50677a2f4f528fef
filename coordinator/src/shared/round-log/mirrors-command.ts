import type { Redis } from 'ioredis';
import type { CommandResult } from './cli.js';
import { removeRoundLogMirror, roundLogStorage } from './trim.js';
import { roundLogKeys } from './keys.js';
import { PRUNE_BELOW_LEVEL } from './tree-segments.js';

// `flotilla audit mirrors [--remove <id>]`: which JSONL mirrors hold the round log, how far each
// has synced, what the Redis stream still holds, and where the Merkle tree's nodes are. A mirror whose host is gone for good keeps
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

/** Where the Merkle tree's nodes are: moving out of the old hash, or in segments (and how much is pruned). */
async function treeStorageLine(redis: Redis, prefix: string): Promise<string> {
  const keys = roundLogKeys(prefix);
  const [oldNodes, pruned] = await Promise.all([redis.hlen(keys.oldTreeHash), redis.get(keys.prunedLeaves)]);
  if (oldNodes > 0)
    return `Merkle tree: ${oldNodes} nodes still in the old hash ${keys.oldTreeHash}, moving into segment strings as the log is appended to (docs/operations.md)`;
  const records = Number(pruned ?? 0);
  return records > 0
    ? `Merkle tree: in segment strings; levels 0-${PRUNE_BELOW_LEVEL - 1} dropped under the first ${records} records (a proof of one reads its block from a mirror)`
    : 'Merkle tree: in segment strings, none of it pruned';
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
  lines.push(await treeStorageLine(redis, prefix));
  return { exitCode: 0, output: `${lines.join('\n')}\n` };
}
