// Signatures and hashing: node:crypto (OpenSSL) against the pure-JS libraries the isomorphic
// protocol uses (tweetnacl for ed25519, @noble/hashes for SHA-256), side by side.
import { createHash } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import nacl from 'tweetnacl';
import { nativeEd25519Verify } from '@flotilla/protocol/node';
import { fillPseudoRandom, interleaved } from '../lib/measure.js';
import type { BenchRow, SectionResult } from '../lib/report.js';

export interface CryptoOptions {
  quick: boolean;
}

/** Distinct signers, so the native verifier's key cache is exercised as on a coordinator. */
const SIGNERS = 64;

export function runCrypto(options: CryptoOptions): SectionResult {
  // What devices sign: a 32-byte domain digest (see protocol `domainDigest`).
  const samples = Array.from({ length: SIGNERS }, (_, i) => {
    const keys = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(i + 1));
    const message = sha256(new Uint8Array([i, 1, 2, 3]));
    return { message, signature: nacl.sign.detached(message, keys.secretKey), publicKey: keys.publicKey };
  });
  const batch = options.quick ? 200 : 400;
  let failures = 0;
  const verifyBatch = (verify: (m: Uint8Array, s: Uint8Array, k: Uint8Array) => boolean) => (): void => {
    for (let i = 0; i < batch; i++) {
      const s = samples[i % SIGNERS];
      if (s !== undefined && !verify(s.message, s.signature, s.publicKey)) failures += 1;
    }
  };
  const sig = interleaved(
    {
      native: verifyBatch(nativeEd25519Verify),
      tweetnacl: verifyBatch((m, s, k) => nacl.sign.detached.verify(m, s, k)),
    },
    { warmup: 1, repeats: options.quick ? 3 : 7, budgetMs: options.quick ? 5_000 : 10_000 },
  );
  const perSecond = (ms: number): number => batch / (ms / 1000);

  // Bulk hashing of one blob (a 16 MiB delta / base-model chunk), both from the same buffer.
  const blob = new Uint8Array(fillPseudoRandom(new Float32Array(4 * 1024 * 1024), 7).buffer);
  let sink = 0;
  const hash = interleaved(
    {
      native: () => {
        sink += createHash('sha256').update(blob).digest()[0] ?? 0;
      },
      noble: () => {
        sink += sha256(blob)[0] ?? 0;
      },
    },
    { warmup: 1, repeats: options.quick ? 3 : 7, budgetMs: options.quick ? 5_000 : 10_000 },
  );
  const gbps = (ms: number): number => blob.length / (ms / 1000) / 1e9;

  const rows: BenchRow[] = [
    {
      section: 'crypto',
      measure: 'ed25519 verify (node:crypto, nativeEd25519Verify)',
      ours: perSecond(sig.medianMs.native),
      oursUnit: 'verifies/s',
      reference: perSecond(sig.medianMs.tweetnacl),
      referenceUnit: 'verifies/s',
      referenceName: 'tweetnacl nacl.sign.detached.verify',
      ratio: sig.medianMs.tweetnacl / sig.medianMs.native,
      ratioMeaning: 'native speed-up',
    },
    {
      section: 'crypto',
      measure: `SHA-256 of ${blob.length / 1024 / 1024} MiB (node:crypto)`,
      ours: gbps(hash.medianMs.native),
      oursUnit: 'GB/s',
      reference: gbps(hash.medianMs.noble),
      referenceUnit: 'GB/s',
      referenceName: '@noble/hashes sha256',
      ratio: hash.medianMs.noble / hash.medianMs.native,
      ratioMeaning: 'native speed-up',
    },
  ];
  return {
    rows,
    details: {
      ed25519: {
        batch,
        signers: SIGNERS,
        medianMs: sig.medianMs,
        rounds: sig.rounds,
        failedVerifications: failures,
      },
      sha256: { bytes: blob.length, medianMs: hash.medianMs, rounds: hash.rounds },
      sink,
    },
  };
}
