import { describe, expect, it } from 'vitest';
import { commitUpdate, updateCommitmentKey } from './update-commitment.js';

// The construction docs/auditing.md gives an auditor, recomputed outside Node with Python's hmac
// module: k = HMAC-SHA-256(secret, "flotilla/update-commitment/v1"),
// commitment = HMAC-SHA-256(k, roundId ‖ 0x00 ‖ blob SHA-256 in hex).
const SECRET = Uint8Array.from({ length: 32 }, (_, i) => i);
const DIGEST = 'ab'.repeat(32);

describe('update commitments', () => {
  it('match the documented construction, computed independently', () => {
    const key = updateCommitmentKey(SECRET);
    expect(Buffer.from(key).toString('hex')).toBe(
      '2cbc50c241304a1156593e1a69347cfe554a6530ab999e0c9946693323ccf3d8',
    );
    expect(commitUpdate(key, 'mnist:7', DIGEST)).toBe(
      '0fa0ced260290e4eae707014002371eeeca80402f858ba1d63688a45bdbb7ac4',
    );
  });

  it('differ across rounds for the same delta, and from the digest itself', () => {
    const key = updateCommitmentKey(SECRET);
    expect(commitUpdate(key, 'mnist:8', DIGEST)).not.toBe(commitUpdate(key, 'mnist:7', DIGEST));
    expect(commitUpdate(key, 'mnist:7', DIGEST)).not.toBe(DIGEST);
  });

  it('refuse a secret too short to key them', () => {
    expect(() => updateCommitmentKey(new Uint8Array(8))).toThrow(/at least 16 bytes/);
  });
});
