import type { Redis } from 'ioredis';
import { FlotillaError } from '@flotilla/protocol';
import { DEFAULT_KEEP_LINES, trimRoundLog, type LaggingMirror } from './trim.js';
import { pruneTrimmedTree } from './tree-prune.js';

// When a writer trims the stream (and prunes the tree under it): after its mirror syncs, once per
// `keepLines / 100` lines it mirrored (one script call per hundred-odd lines, and the stream
// exceeds keepLines by at most that), and whom it tells about a mirror that stopped.

/**
 * A mirror silent this long while it holds lines in Redis is reported, at most this often, ms.
 * (Under load every mirror is some lines behind; one that syncs is not stuck.)
 */
const LAGGING_MIRROR_REPORT_MS = 60_000;

function warnLaggingMirror(lagging: LaggingMirror): void {
  process.emitWarning(
    `round-log mirror ${lagging.mirrorId} is ${lagging.behind} lines behind (last synced ${new Date(lagging.at).toISOString()}) and keeps them in Redis; if its host is gone for good: flotilla audit mirrors --remove '${lagging.mirrorId}'`,
  );
}

export interface StreamTrimmerOptions {
  redis: Redis;
  prefix: string;
  /** Newest lines kept; 0: never trim. Default `DEFAULT_KEEP_LINES`. */
  keepLines?: number;
  /** Default: `process.emitWarning`. */
  onLaggingMirror?: (lagging: LaggingMirror) => void;
  /** A failed trim (the lines stay; the next one retries). */
  onError: (error: unknown) => void;
}

/** Returns what a writer calls after each mirror sync with the lines it wrote; never throws. */
export function streamTrimmer(options: StreamTrimmerOptions): (mirroredLines: number) => Promise<void> {
  const keepLines = options.keepLines ?? DEFAULT_KEEP_LINES;
  if (!Number.isInteger(keepLines) || keepLines < 0)
    throw new FlotillaError('BAD_REQUEST', `keepLines must be a whole number ≥ 0, not ${keepLines}`);
  const onLaggingMirror = options.onLaggingMirror ?? warnLaggingMirror;
  const trimEvery = Math.max(1, Math.ceil(keepLines / 100));
  let mirroredSinceTrim = 0;
  let laggingReportedAt = Number.NEGATIVE_INFINITY;

  async function trim(): Promise<void> {
    const { lagging, removed } = await trimRoundLog(options.redis, options.prefix, keepLines);
    // What left the stream also leaves the tree's low levels (tree-prune.ts).
    if (removed > 0) await pruneTrimmedTree(options.redis, options.prefix);
    const now = Date.now();
    if (!lagging || now - lagging.at < LAGGING_MIRROR_REPORT_MS) return;
    if (now - laggingReportedAt >= LAGGING_MIRROR_REPORT_MS) {
      laggingReportedAt = now;
      onLaggingMirror(lagging);
    }
  }

  return async (mirroredLines) => {
    mirroredSinceTrim += mirroredLines;
    if (keepLines === 0 || mirroredSinceTrim < trimEvery) return;
    mirroredSinceTrim = 0;
    await trim().catch((error: unknown) =>
      options.onError(
        new FlotillaError('INTERNAL', 'the round-log stream was not trimmed', { cause: error }),
      ),
    );
  };
}
