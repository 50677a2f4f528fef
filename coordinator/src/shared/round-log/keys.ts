import { join } from 'node:path';

/** The round log's Redis keys under one prefix (`roundLogKeys`). */
export type RoundLogKeys = ReturnType<typeof keysUnder>;

// A process writes one prefix: its keys are built once, not with every append (the object holds
// two closures and eight template strings).
let lastKeys: { prefix: string; keys: RoundLogKeys } | null = null;

/** Redis keys of the round log, all under `${prefix}:roundlog:` (the same frozen object for the same prefix). */
export function roundLogKeys(prefix: string): RoundLogKeys {
  if (lastKeys?.prefix !== prefix) lastKeys = { prefix, keys: keysUnder(prefix) };
  return lastKeys.keys;
}

function keysUnder(prefix: string) {
  return Object.freeze({
    /** String JSON of where the log stands (`LogState`): the compare-and-set head of appends. */
    head: `${prefix}:roundlog:head`,
    /**
     * Where logs of head format 2 kept the Merkle tree's complete subtrees: a hash, field
     * `<level>:<index>`, 32 raw bytes. Emptied (and so deleted) by the migration to segments
     * (tree-migration.ts); read as a fallback until then.
     */
    oldTreeHash: `${prefix}:roundlog:tree`,
    /**
     * String of up to `TREE_SEGMENT_NODES` complete subtrees of one level, 32 raw bytes each, in
     * index order: node (level, index) is at byte 32·(index mod TREE_SEGMENT_NODES) of segment
     * ⌊index / TREE_SEGMENT_NODES⌋ (tree-segments.ts).
     */
    treeSegment: (level: number, segment: number) => `${prefix}:roundlog:tree:${level}:${segment}`,
    /**
     * String, a whole number of `PRUNE_BLOCK_LEAVES`: the records below it have their tree levels
     * under `PRUNE_BELOW_LEVEL` dropped from Redis (tree-prune.ts). Absent: nothing dropped.
     */
    prunedLeaves: `${prefix}:roundlog:pruned`,
    /** SCAN/KEYS pattern matching every tree segment key. */
    treeSegmentPattern: `${prefix}:roundlog:tree:*`,
    /** Stream of lines (records and tree heads); entry id `0-<seq+1>`, field `record` = the line's JSON. */
    stream: `${prefix}:roundlog:stream`,
    /**
     * Hash of the JSONL mirrors that registered themselves: field = mirror id (`mirrorIdOf`),
     * value = JSON `{ seq, at }`, the last line durably in that file and when it was written
     * (epoch ms). The stream is trimmed only below every registered mirror's seq (trim.ts).
     */
    mirrors: `${prefix}:roundlog:mirrors`,
    /** Sorted set: retained delta blob digest, score = retained until (epoch ms). */
    retained: `${prefix}:roundlog:retained`,
    /**
     * Hash of what the log holds for one round, kept by the append script itself: `accepted` and
     * `refused` record counts, and `acc:<pseudonym>` = seq of the device's `update.accepted`.
     */
    round: (roundId: string) => `${prefix}:roundlog:round:${roundId}`,
  });
}

/** Stream entry id of a seq; ids encode the seq so a reader can resume after any seq. */
export function streamIdOf(seq: number): string {
  return `0-${seq + 1}`;
}

/** Default JSONL mirror path under a state directory (`.flotilla` → `.flotilla/audit/round-log.jsonl`). */
export function defaultRoundLogPath(stateDir: string): string {
  return join(stateDir, 'audit', 'round-log.jsonl');
}
