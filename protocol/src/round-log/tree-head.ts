import { z } from 'zod';
import { SIGNING_DOMAINS } from '../digest.js';
import { fromHex, toBase64, toHex } from '../encoding.js';
import { DigestSchema, EpochMsSchema, PublicKeySchema, SignatureSchema } from '../messages/primitives.js';
import { signPayload, verifyPayload, type SigningKeyPair } from '../signing.js';

/**
 * What the coordinator signs: the log's first `treeSize` records have the Merkle root `rootHash`
 * (RFC 9162 §4.10's signed tree head, with Flotilla's own signing domain and encoding).
 */
export const TreeHeadSchema = z.strictObject({
  /** Records (leaves) covered. */
  treeSize: z.number().int().nonnegative(),
  /** MTH of those leaves, hex. */
  rootHash: DigestSchema,
  /** Epoch ms when it was signed. */
  ts: EpochMsSchema,
  /** The signer's ed25519 public key, base64. */
  keyId: PublicKeySchema,
});
export type TreeHead = z.infer<typeof TreeHeadSchema>;

/** Longest consistency proof a line may carry: log2 of any log size plus one. */
const MAX_PROOF_HASHES = 64;

/**
 * A signed tree head as a line of the log, right after the last record it covers. `consistency`
 * is the RFC 9162 proof from the previous tree head in the log (empty for the first), so whoever
 * keeps only heads can check that the log only grew. It is not signed: the verifier checks it.
 */
export const TreeHeadLineSchema = z.strictObject({
  /** Position of the line in the log, as for records. */
  seq: z.number().int().nonnegative(),
  treeHead: TreeHeadSchema,
  /** ed25519 by `treeHead.keyId` over the `flotilla/v1/tree-head` domain digest of `treeHead`. */
  signature: SignatureSchema,
  consistency: z.array(DigestSchema).max(MAX_PROOF_HASHES),
});
export type TreeHeadLine = z.infer<typeof TreeHeadLineSchema>;

/** A signed tree head on its own (what a device receives with a proof). */
export const SignedTreeHeadSchema = z.strictObject({
  treeHead: TreeHeadSchema,
  signature: SignatureSchema,
});
export type SignedTreeHead = z.infer<typeof SignedTreeHeadSchema>;

/** Signs a tree head with the coordinator key (`keyId` is set from it). */
export function signTreeHead(
  head: Omit<TreeHead, 'keyId' | 'rootHash'> & { rootHash: Uint8Array },
  signingKey: SigningKeyPair,
): SignedTreeHead {
  const treeHead: TreeHead = {
    treeSize: head.treeSize,
    rootHash: toHex(head.rootHash),
    ts: head.ts,
    keyId: toBase64(signingKey.publicKey),
  };
  return { treeHead, signature: signPayload(SIGNING_DOMAINS.treeHead, treeHead, signingKey.secretKey) };
}

/** Whether `signature` is `publicKeyB64`'s signature of `treeHead` (never throws). */
export function verifyTreeHeadSignature(head: SignedTreeHead, publicKeyB64: string): boolean {
  return verifyPayload(SIGNING_DOMAINS.treeHead, head.treeHead, head.signature, publicKeyB64);
}

/** The head's root as bytes. */
export function treeHeadRoot(head: TreeHead): Uint8Array {
  return fromHex(head.rootHash);
}
