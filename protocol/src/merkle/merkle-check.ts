/**
 * The outcome of checking a Merkle proof. A failed check is an answer, not an error: a device or
 * auditor reports `reason` (which step disagreed) instead of catching an exception.
 */
export type MerkleCheck = { ok: true } | { ok: false; reason: string };
