import { z } from 'zod';
import { toHex } from '../encoding.js';
import { sameHash } from '../merkle/hash.js';
import { verifyInclusion } from '../merkle/inclusion-proof.js';
import type { MerkleCheck } from '../merkle/merkle-check.js';
import { fromHex } from '../encoding.js';
import { RoundLogRecordSchema, roundLogLeafHash, type RoundLogRecord } from '../round-log/record.js';
import { SignedTreeHeadSchema, verifyTreeHeadSignature } from '../round-log/tree-head.js';
import { DigestSchema } from './primitives.js';

/**
 * Where an accepted update sits in the round log (part of its `update:submit` receipt): the
 * `update.accepted` record the coordinator appended and that record's leaf hash. With an
 * inclusion proof against a signed tree head, the device can show that its update was counted.
 */
export const LogLeafSchema = z.strictObject({
  record: RoundLogRecordSchema,
  /** SHA-256(0x00 ‖ RFC 8785 canonical JSON of `record`), hex. */
  leafHash: DigestSchema,
});
export type LogLeaf = z.infer<typeof LogLeafSchema>;

/** The leaf an answer names: `record` with its leaf hash. */
export function logLeafOf(record: RoundLogRecord): LogLeaf {
  return { record, leafHash: toHex(roundLogLeafHash(record)) };
}

/**
 * log:proof — sent by a device holding a receipt's leaf. Ack: `LogProofResult`: the proof of
 * that leaf against the coordinator's latest signed tree head, or `inclusion: null` while no
 * signed head covers it yet (ask again later: heads are signed at least every second).
 */
export const LogProofRequestSchema = z.object({
  leafIndex: z.number().int().nonnegative(),
});
export type LogProofRequest = z.infer<typeof LogProofRequestSchema>;

/** Longest audit path: one hash per level of a tree of up to 2^64 leaves. */
const MAX_PATH = 64;

export const InclusionProofSchema = z.strictObject({
  leafIndex: z.number().int().nonnegative(),
  /** Sibling hashes from the leaf up to the root (RFC 9162 §2.1.3), hex. */
  proof: z.array(DigestSchema).max(MAX_PATH),
  /** The signed tree head the proof leads to. */
  head: SignedTreeHeadSchema,
});
export type InclusionProof = z.infer<typeof InclusionProofSchema>;

export const LogProofResultSchema = z.object({ inclusion: InclusionProofSchema.nullable() });
export type LogProofResult = z.infer<typeof LogProofResultSchema>;

/**
 * Checks a receipt's leaf against an inclusion proof, trusting only `coordinatorKey` (base64):
 * the leaf hash is its record's, the head is signed by that key and covers the leaf, and the
 * proof rebuilds the head's root from the leaf. A failed check says which step disagreed.
 */
export function checkLogInclusion(options: {
  leaf: LogLeaf;
  inclusion: InclusionProof;
  coordinatorKey: string;
}): MerkleCheck {
  const { leaf, inclusion, coordinatorKey } = options;
  const computed = roundLogLeafHash(leaf.record);
  if (!sameHash(computed, fromHex(leaf.leafHash)))
    return { ok: false, reason: `the receipt's leaf hash is not its record's (${toHex(computed)})` };
  if (inclusion.leafIndex !== leaf.record.leafIndex)
    return {
      ok: false,
      reason: `the proof is for leaf ${inclusion.leafIndex}, not ${leaf.record.leafIndex}`,
    };
  if (inclusion.head.treeHead.keyId !== coordinatorKey)
    return {
      ok: false,
      reason: `the tree head is signed by ${inclusion.head.treeHead.keyId}, not the coordinator key`,
    };
  if (!verifyTreeHeadSignature(inclusion.head, coordinatorKey))
    return { ok: false, reason: 'the tree head signature is not valid' };
  return verifyInclusion({
    index: leaf.record.leafIndex,
    size: inclusion.head.treeHead.treeSize,
    leafHash: computed,
    proof: inclusion.proof.map(fromHex),
    root: fromHex(inclusion.head.treeHead.rootHash),
  });
}
