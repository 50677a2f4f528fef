import { z } from 'zod';
import { canonicalJson } from '../canonical-json.js';
import { utf8 } from '../encoding.js';
import { merkleLeafHash } from '../merkle/hash.js';
import { EpochMsSchema } from '../messages/primitives.js';
import { RoundLogEventSchema, type RoundLogEvent } from './events.js';

/**
 * One event of the round log: a leaf of its Merkle tree (RFC 9162). Records are not signed one
 * by one; the coordinator signs tree heads (tree-head.ts) that cover them, which is what lets
 * ingest run at the speed of hashing rather than of signing.
 */
export const RoundLogRecordSchema = z.strictObject({
  /** 0-based position of the line in the log (records and tree heads share the count); consecutive. */
  seq: z.number().int().nonnegative(),
  /** 0-based index of this record among the tree's leaves (records only). */
  leafIndex: z.number().int().nonnegative(),
  /** Epoch ms; non-decreasing along the log. */
  ts: EpochMsSchema,
  event: RoundLogEventSchema,
});
export type RoundLogRecord = z.infer<typeof RoundLogRecordSchema>;

/**
 * The record's leaf hash: SHA-256(0x00 ‖ RFC 8785 canonical JSON of the whole record). What a
 * device's receipt names and an inclusion proof starts from.
 */
export function roundLogLeafHash(record: RoundLogRecord): Uint8Array {
  return merkleLeafHash(utf8(canonicalJson(record)));
}

export interface BuildRoundLogRecordOptions {
  seq: number;
  leafIndex: number;
  /** Epoch ms. */
  ts: number;
  event: RoundLogEvent;
}

/** Validates the event and makes the record (its leaf hash is `roundLogLeafHash`). */
export function buildRoundLogRecord(options: BuildRoundLogRecordOptions): RoundLogRecord {
  return {
    seq: options.seq,
    leafIndex: options.leafIndex,
    ts: options.ts,
    event: RoundLogEventSchema.parse(options.event),
  };
}
