import { EMPTY_TREE_ROOT } from '../merkle/hash.js';
import { consistencyPath } from '../merkle/consistency-proof.js';
import { StoredMerkleTree } from '../merkle/stored-tree.js';
import { toHex } from '../encoding.js';
import type { SigningKeyPair } from '../signing.js';
import type { RoundLogEvent } from './events.js';
import { z } from 'zod';
import {
  RoundLogRecordSchema,
  buildRoundLogRecord,
  roundLogLeafHash,
  type RoundLogRecord,
} from './record.js';
import { TreeHeadLineSchema, signTreeHead, type TreeHeadLine } from './tree-head.js';

/** A line of the log file: a record (a leaf) or a signed tree head. */
export const RoundLogLineSchema = z.union([RoundLogRecordSchema, TreeHeadLineSchema]);
export type RoundLogLine = RoundLogRecord | TreeHeadLine;

/** Whether a parsed line claims to be a tree head (it may still fail its schema). */
export function isTreeHeadLine(raw: unknown): boolean {
  return typeof raw === 'object' && raw !== null && 'treeHead' in raw;
}

/**
 * Writes a round log in memory, in the exact format the coordinator writes to Redis and the JSONL
 * mirror: for tools, simulations that need no coordinator, and tests. Not concurrent.
 */
export class RoundLogBuilder {
  readonly lines: RoundLogLine[] = [];
  private readonly tree = new StoredMerkleTree();
  private signedSize = 0;

  /** Appends a record of `event` at `ts` (epoch ms). */
  record(event: RoundLogEvent, ts: number): RoundLogRecord {
    const record = buildRoundLogRecord({ seq: this.lines.length, leafIndex: this.tree.size, ts, event });
    this.tree.append(roundLogLeafHash(record));
    this.lines.push(record);
    return record;
  }

  /** Signs a head over every record so far, with the consistency proof from the previous head. */
  signHead(ts: number, signingKey: SigningKeyPair): TreeHeadLine {
    const size = this.tree.size;
    const signed = signTreeHead({ treeSize: size, rootHash: this.tree.root(size), ts }, signingKey);
    const line: TreeHeadLine = {
      seq: this.lines.length,
      ...signed,
      consistency: consistencyPath(this.tree.subtree, this.signedSize, size).map(toHex),
    };
    this.signedSize = size;
    this.lines.push(line);
    return line;
  }

  /** Records not yet covered by a signed head. */
  get unsigned(): number {
    return this.tree.size - this.signedSize;
  }

  /** The root of the first `size` records (the empty root for 0). */
  root(size: number): Uint8Array {
    return size === 0 ? EMPTY_TREE_ROOT : this.tree.root(size);
  }
}

/** The key that signed the first tree head of a log (unverified), or null: the unpinned default. */
export function firstTreeHeadSigner(lines: readonly unknown[]): string | null {
  for (const raw of lines) {
    if (!isTreeHeadLine(raw)) continue;
    const parsed = TreeHeadLineSchema.safeParse(raw);
    return parsed.success ? parsed.data.treeHead.keyId : null;
  }
  return null;
}

/**
 * The lines up to and including the last tree head: what a reader of a live log can verify now.
 * Records after it are not signed yet (the writer signs them within its head interval).
 */
export function signedPrefix<T>(lines: readonly T[]): T[] {
  let end = lines.length;
  while (end > 0 && !isTreeHeadLine(lines[end - 1])) end--;
  return lines.slice(0, end);
}
