// ed25519 across the two verifiers: tweetnacl (isomorphic default) and node:crypto (installed by
// @flotilla/protocol/node). Reference: RFC 8032 section 7.1, TEST 1.
import { createPrivateKey, sign as nodeSign } from 'node:crypto';
import fc from 'fast-check';
import nacl from 'tweetnacl';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256Hex, SIGNING_DOMAINS } from '../src/digest.js';
import { fromHex, toBase64 } from '../src/encoding.js';
import { UpdateMetadataSchema, type UpdateMetadata } from '../src/messages/update.js';
import { installNativeEd25519, nativeEd25519Sign, nativeEd25519Verify } from '../src/node/index.js';
import {
  ed25519SignerName,
  ed25519VerifierName,
  keyPairFromSeed,
  setEd25519Signer,
  setEd25519Verifier,
  tweetnaclSign,
  signPayload,
  tweetnaclVerify,
  verifyPayload,
} from '../src/signing.js';

const RFC8032_TEST1 = {
  secretKey: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
  publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  signature:
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
};

/** node:crypto private key from a raw 32-byte seed (PKCS#8 DER prefix of RFC 8410). */
function nodePrivateKey(seed: Uint8Array) {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

const verifiers = [
  ['tweetnacl', tweetnaclVerify],
  ['node:crypto', nativeEd25519Verify],
] as const;

afterEach(() => {
  setEd25519Verifier('tweetnacl', tweetnaclVerify);
  setEd25519Signer('tweetnacl', tweetnaclSign);
});

describe('ed25519 signers', () => {
  it('node:crypto signs RFC 8032 test 1 to its published signature', () => {
    const { secretKey } = keyPairFromSeed(fromHex(RFC8032_TEST1.secretKey));
    expect(Buffer.from(nativeEd25519Sign(new Uint8Array(0), secretKey)).toString('hex')).toBe(
      RFC8032_TEST1.signature,
    );
  });

  it('node:crypto and tweetnacl give the same bytes for any key and message', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 300 }),
        (seed, msg) => {
          const { secretKey } = keyPairFromSeed(seed);
          expect(Array.from(nativeEd25519Sign(msg, secretKey))).toEqual(
            Array.from(tweetnaclSign(msg, secretKey)),
          );
        },
      ),
      { numRuns: 40 },
    );
    expect(() => nativeEd25519Sign(new Uint8Array(1), new Uint8Array(32))).toThrow(/64 bytes/);
  });

  it('installNativeEd25519 makes signPayload use node:crypto, with unchanged signatures', () => {
    const { secretKey } = keyPairFromSeed(new Uint8Array(32).fill(5));
    const before = signPayload(SIGNING_DOMAINS.task, { n: 1 }, secretKey);
    installNativeEd25519();
    expect(ed25519SignerName()).toBe('node:crypto');
    expect(signPayload(SIGNING_DOMAINS.task, { n: 1 }, secretKey)).toBe(before);
  });
});

describe('ed25519 verifiers', () => {
  it('RFC 8032 test 1 (empty message) verifies with both, and both signers produce its signature', () => {
    const seed = fromHex(RFC8032_TEST1.secretKey);
    const publicKey = fromHex(RFC8032_TEST1.publicKey);
    const signature = fromHex(RFC8032_TEST1.signature);
    const message = new Uint8Array(0);
    expect(keyPairFromSeed(seed).publicKey).toEqual(publicKey);
    expect(nacl.sign.detached(message, keyPairFromSeed(seed).secretKey)).toEqual(signature);
    expect(new Uint8Array(nodeSign(null, message, nodePrivateKey(seed)))).toEqual(signature);
    for (const [, verify] of verifiers) {
      expect(verify(message, signature, publicKey)).toBe(true);
      expect(verify(new Uint8Array([0]), signature, publicKey)).toBe(false);
    }
  });

  it('a tweetnacl signature verifies natively and a native one with tweetnacl', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 200 }),
        (seed, message) => {
          const keyPair = keyPairFromSeed(seed);
          const naclSignature = nacl.sign.detached(message, keyPair.secretKey);
          const nativeSignature = new Uint8Array(nodeSign(null, message, nodePrivateKey(seed)));
          expect(nativeEd25519Verify(message, naclSignature, keyPair.publicKey)).toBe(true);
          expect(tweetnaclVerify(message, nativeSignature, keyPair.publicKey)).toBe(true);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('the native verifier returns false for malformed keys and signatures', () => {
    const keyPair = keyPairFromSeed(new Uint8Array(32).fill(7));
    const message = new Uint8Array([1, 2, 3]);
    const signature = nacl.sign.detached(message, keyPair.secretKey);
    expect(nativeEd25519Verify(message, signature.subarray(0, 63), keyPair.publicKey)).toBe(false);
    expect(nativeEd25519Verify(message, signature, keyPair.publicKey.subarray(0, 31))).toBe(false);
    expect(nativeEd25519Verify(message, new Uint8Array(64), keyPair.publicKey)).toBe(false);
    // Not a curve point: y = 2^255 - 1 has no x.
    expect(nativeEd25519Verify(message, signature, new Uint8Array(32).fill(0xff))).toBe(false);
    expect(nativeEd25519Verify(message, signature, new Uint8Array(32))).toBe(false);
  });

  it('installNativeEd25519 makes verifyPayload use node:crypto', () => {
    installNativeEd25519();
    expect(ed25519VerifierName()).toBe('node:crypto');
    const keyPair = keyPairFromSeed(new Uint8Array(32).fill(1));
    const payload = { hello: 'world' };
    const signature = signPayload(SIGNING_DOMAINS.update, payload, keyPair.secretKey);
    expect(verifyPayload(SIGNING_DOMAINS.update, payload, signature, toBase64(keyPair.publicKey))).toBe(true);
    expect(verifyPayload(SIGNING_DOMAINS.task, payload, signature, toBase64(keyPair.publicKey))).toBe(false);
  });
});

describe.each(verifiers)('tamper detection with the %s verifier', (name, verify) => {
  const keyPair = keyPairFromSeed(new Uint8Array(32).fill(9));
  const publicKey = toBase64(keyPair.publicKey);

  function metadataFor(blob: Uint8Array): UpdateMetadata {
    return UpdateMetadataSchema.parse({
      protocolVersion: '1.0',
      taskId: 'mnist-lora',
      roundId: 'mnist-lora:12',
      nonce: 'cd'.repeat(32),
      deviceId: 'device-007',
      blobDigest: sha256Hex(blob),
      blobBytes: blob.length,
      adapterVersion: 3,
      numExamples: 120,
      reportedNorm: 0.75,
      clipped: false,
      quantization: 'none',
      telemetry: {
        trainingMs: 1500,
        steps: 20,
        examples: 120,
        stepsPerSecond: 13.3,
        bytesUp: blob.length,
        bytesDown: 0,
        estimatedEnergyJ: 2.5,
        backend: 'wasm',
      },
      createdAt: 1_700_000_000_000,
    });
  }

  /** A different value of the same type. */
  function changed(value: unknown, salt: number): unknown {
    if (typeof value === 'string')
      return value.length > 0 ? value.slice(0, -1) + (value.endsWith('a') ? 'b' : 'a') : 'a';
    if (typeof value === 'number') return value + 1 + salt;
    if (typeof value === 'boolean') return !value;
    if (value !== null && typeof value === 'object') {
      const entries: [string, unknown][] = Object.entries(value as Record<string, unknown>);
      const [key, inner] = entries[salt % entries.length] ?? ['extra', 0];
      return { ...value, [key]: changed(inner, salt) };
    }
    return 'changed';
  }

  it('flipping any byte of the blob breaks the signed metadata', () => {
    setEd25519Verifier(name, verify);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 256 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (blob, at, mask) => {
          const metadata = metadataFor(blob);
          const signature = signPayload(SIGNING_DOMAINS.update, metadata, keyPair.secretKey);
          expect(verifyPayload(SIGNING_DOMAINS.update, metadata, signature, publicKey)).toBe(true);
          const tampered = blob.slice();
          tampered[at % blob.length] = (tampered[at % blob.length] ?? 0) ^ mask;
          // The receiver recomputes the digest of the blob it got and checks the signature over it.
          const received = { ...metadata, blobDigest: sha256Hex(tampered) };
          expect(verifyPayload(SIGNING_DOMAINS.update, received, signature, publicKey)).toBe(false);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('changing any field of the UpdateMetadata breaks the signature', () => {
    setEd25519Verifier(name, verify);
    const metadata = metadataFor(new Uint8Array([1, 2, 3]));
    const signature = signPayload(SIGNING_DOMAINS.update, metadata, keyPair.secretKey);
    const keys = Object.keys(metadata) as (keyof UpdateMetadata)[];
    fc.assert(
      fc.property(fc.constantFrom(...keys), fc.nat(50), (key, salt) => {
        const tampered = { ...metadata, [key]: changed(metadata[key], salt) };
        expect(verifyPayload(SIGNING_DOMAINS.update, tampered, signature, publicKey)).toBe(false);
      }),
      { numRuns: 200 },
    );
    // And deterministically, every field once.
    for (const key of keys) {
      expect(
        verifyPayload(
          SIGNING_DOMAINS.update,
          { ...metadata, [key]: changed(metadata[key], 0) },
          signature,
          publicKey,
        ),
      ).toBe(false);
    }
  });
});
