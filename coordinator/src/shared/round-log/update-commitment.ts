import { createHmac } from 'node:crypto';
import { FlotillaError } from '@flotilla/protocol';

// How a DP round's log names an update without revealing anything about it. A plain SHA-256 of
// the delta would let a log reader confirm a guess of the delta (under zero-out: "was it the zero
// update?"), which ε does not cover. An HMAC under a key the log's readers do not hold is
// pseudorandom to them (hiding), and binding for whoever holds the key: the operator, or an
// auditor given the key to open commitments against the blob store (docs/privacy.md).

/** Label that derives the commitment key from the pseudonym secret (domain separation). */
const COMMITMENT_KEY_LABEL = 'flotilla/update-commitment/v1';

/**
 * The commitment key: HMAC-SHA-256(pseudonymSecret, "flotilla/update-commitment/v1"). Derived, so
 * it can be given to an auditor without the secret that links pseudonyms to device ids.
 */
export function updateCommitmentKey(pseudonymSecret: Uint8Array): Uint8Array {
  if (pseudonymSecret.length < 16)
    throw new FlotillaError('BAD_REQUEST', 'pseudonym secret must be at least 16 bytes');
  return new Uint8Array(createHmac('sha256', pseudonymSecret).update(COMMITMENT_KEY_LABEL, 'utf8').digest());
}

/**
 * An update's commitment in a DP round's log: HMAC-SHA-256(key, `<roundId>` ‖ 0x00 ‖ `<blob
 * SHA-256, hex>`), hex (64 characters, the shape of a digest). The round id makes the same delta
 * sent in two rounds unlinkable.
 */
export function commitUpdate(key: Uint8Array, roundId: string, blobDigest: string): string {
  return createHmac('sha256', key).update(`${roundId}\0${blobDigest}`, 'utf8').digest('hex');
}
