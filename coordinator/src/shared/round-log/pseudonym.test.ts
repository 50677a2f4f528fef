import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOrCreatePseudonymSecret, pseudonymizeDevice } from './pseudonym.js';

const secretA = new Uint8Array(32).fill(7);
const secretB = new Uint8Array(32).fill(8);
/** Device ids as enrollment allows them, long enough that containment by chance is negligible (< 1e-8). */
const deviceId = fc.stringMatching(/^[A-Za-z0-9._-]{8,64}$/);

describe('pseudonymizeDevice', () => {
  it('is HMAC-SHA-256 truncated to 16 bytes, prefixed dev_ (RFC 4231 test case 2 key/data)', () => {
    // RFC 4231 case 2: key "Jefe", data "what do ya want for nothing?" -> 5bdcc146bf60754e6a042426089575c7...
    const secret = new TextEncoder().encode('Jefe'.repeat(4));
    const expected = createHmac('sha256', secret)
      .update('what do ya want for nothing?')
      .digest('hex')
      .slice(0, 32);
    expect(pseudonymizeDevice(secret, 'what do ya want for nothing?')).toBe(`dev_${expected}`);
    expect(
      createHmac('sha256', 'Jefe').update('what do ya want for nothing?').digest('hex').slice(0, 32),
    ).toBe('5bdcc146bf60754e6a042426089575c7');
  });

  it('never equals or contains the raw id; stable per secret; different across secrets', () => {
    fc.assert(
      fc.property(deviceId, (id) => {
        const a = pseudonymizeDevice(secretA, id);
        expect(a).toMatch(/^dev_[0-9a-f]{32}$/);
        expect(a).not.toBe(id);
        expect(a.includes(id)).toBe(false);
        expect(pseudonymizeDevice(secretA, id)).toBe(a);
        expect(pseudonymizeDevice(secretB, id)).not.toBe(a);
      }),
      { numRuns: 300 },
    );
  });

  it('distinct ids get distinct pseudonyms', () => {
    fc.assert(
      fc.property(deviceId, deviceId, (x, y) => {
        fc.pre(x !== y);
        expect(pseudonymizeDevice(secretA, x)).not.toBe(pseudonymizeDevice(secretA, y));
      }),
    );
  });
});

describe('loadOrCreatePseudonymSecret', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-pseudonym-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates keys/pseudonym.secret with mode 0600 and reads the same secret back', async () => {
    const first = await loadOrCreatePseudonymSecret(dir);
    expect(first.length).toBe(32);
    expect(statSync(join(dir, 'keys', 'pseudonym.secret')).mode & 0o777).toBe(0o600);
    expect(await loadOrCreatePseudonymSecret(dir)).toEqual(first);
  });
});
