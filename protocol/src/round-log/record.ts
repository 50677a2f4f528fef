import { z } from 'zod';
import { canonicalJson } from '../canonical-json.js';
import { SIGNING_DOMAINS, sha256Hex } from '../digest.js';
import { toBase64, utf8 } from '../encoding.js';
import { DigestSchema, EpochMsSchema, PublicKeySchema, SignatureSchema } from '../messages/primitives.js';
import { signPayload, verifyPayload, type SigningKeyPair } from '../signing.js';
import { RoundLogEventSchema, type RoundLogEvent } from './events.js';

/** `prevHash` of the first record (seq 0). */
export const ROUND_LOG_GENESIS_HASH = '0'.repeat(64);

/**
 * One line of the round log. `hash` is SHA-256 over the RFC 8785 canonical JSON of the record
 * without `hash` and `signature`; `signature` is ed25519 by `keyId` over the `flotilla/v1/round-log`
 * domain digest of that same body. `prevHash` is the previous record's `hash`, which chains them.
 */
export const RoundLogRecordSchema = z.strictObject({
  /** 0-based position in the chain; consecutive. */
  seq: z.number().int().nonnegative(),
  /** Epoch ms; non-decreasing along the chain. */
  ts: EpochMsSchema,
  prevHash: DigestSchema,
  /** The signer's ed25519 public key, base64. */
  keyId: PublicKeySchema,
  event: RoundLogEventSchema,
  hash: DigestSchema,
  signature: SignatureSchema,
});
export type RoundLogRecord = z.infer<typeof RoundLogRecordSchema>;

/** What the hash and the signature cover. */
export type RoundLogRecordBody = Omit<RoundLogRecord, 'hash' | 'signature'>;

export function roundLogRecordBody(record: RoundLogRecord): RoundLogRecordBody {
  const { hash: _hash, signature: _signature, ...body } = record;
  return body;
}

/** SHA-256 hex of the canonical JSON of a record body. */
export function roundLogRecordHash(body: RoundLogRecordBody): string {
  return sha256Hex(utf8(canonicalJson(body)));
}

export interface BuildRoundLogRecordOptions {
  seq: number;
  /** Epoch ms. */
  ts: number;
  prevHash: string;
  event: RoundLogEvent;
  signingKey: SigningKeyPair;
}

/** Validates the event, then hashes and signs the record. */
export function buildRoundLogRecord(options: BuildRoundLogRecordOptions): RoundLogRecord {
  const body: RoundLogRecordBody = {
    seq: options.seq,
    ts: options.ts,
    prevHash: options.prevHash,
    keyId: toBase64(options.signingKey.publicKey),
    event: RoundLogEventSchema.parse(options.event),
  };
  return {
    ...body,
    hash: roundLogRecordHash(body),
    signature: signPayload(SIGNING_DOMAINS.roundLog, body, options.signingKey.secretKey),
  };
}

/** Checks the record's signature against `publicKeyB64` (never throws). */
export function verifyRoundLogRecordSignature(record: RoundLogRecord, publicKeyB64: string): boolean {
  return verifyPayload(SIGNING_DOMAINS.roundLog, roundLogRecordBody(record), record.signature, publicKeyB64);
}
