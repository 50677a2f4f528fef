/**
 * Random sources for DP noise.
 *
 * Production uses {@link createCryptoRng}: a xoshiro128** generator whose 128-bit state is drawn
 * from the platform CSPRNG (`crypto.getRandomValues`) and re-drawn every 2^16 outputs, so noise
 * cannot be predicted from a seed. Simulations and tests pass a seed to {@link createSeededRng}
 * for reproducible runs. Either way the Gaussian is sampled in floating point (Box–Muller), which
 * is the usual practice (Opacus, TF Privacy) but is known to leak through the low bits
 * (Mironov 2012, "On significance of the least significant bits for differential privacy").
 */
import { at } from '@flotilla/protocol';

export interface RandomSource {
  /** Uniform in [0, 1), 53 random bits. */
  uniform(): number;
  /** Standard normal N(0, 1). */
  normal(): number;
}

/** splitmix32: spreads a 32-bit seed over the generator state (avoids all-zero states). */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Hashes a string seed to 32 bits (FNV-1a), so seeds like "run-7" are accepted. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

class Xoshiro128StarStar implements RandomSource {
  // The 128-bit state as four uint32 words in fields: the step reads no array.
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spare: number | null = null;
  private outputs = 0;

  constructor(
    state: Uint32Array,
    private readonly reseed: ((state: Uint32Array) => void) | null,
  ) {
    this.load(state);
  }

  private load(state: Uint32Array): void {
    [this.s0, this.s1, this.s2, this.s3] = [at(state, 0), at(state, 1), at(state, 2), at(state, 3)];
  }

  private next32(): number {
    if (this.reseed !== null && ++this.outputs >= 65_536) {
      this.outputs = 0;
      const fresh = new Uint32Array(4);
      this.reseed(fresh);
      this.load(fresh);
    }
    const { s0, s1 } = this;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    const s2 = (this.s2 ^ s0) >>> 0;
    const s3 = (this.s3 ^ s1) >>> 0;
    this.s1 = (s1 ^ s2) >>> 0;
    this.s0 = (s0 ^ s3) >>> 0;
    this.s2 = (s2 ^ t) >>> 0;
    this.s3 = rotl(s3, 11);
    return result;
  }

  uniform(): number {
    // 27 + 26 bits → a multiple of 2^-53 in [0, 1).
    const a = this.next32() >>> 5;
    const b = this.next32() >>> 6;
    return (a * 67_108_864 + b) / 9_007_199_254_740_992;
  }

  normal(): number {
    if (this.spare !== null) {
      const value = this.spare;
      this.spare = null;
      return value;
    }
    // Box–Muller; 1 − u is in (0, 1], so the log is finite.
    const radius = Math.sqrt(-2 * Math.log(1 - this.uniform()));
    const angle = 2 * Math.PI * this.uniform();
    this.spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A reproducible generator for simulations and tests. */
export function createSeededRng(seed: number | string): RandomSource {
  const mix = splitmix32(typeof seed === 'string' ? fnv1a(seed) : seed);
  return new Xoshiro128StarStar(Uint32Array.from([mix(), mix(), mix(), mix()]), null);
}

function fillFromCsprng(state: Uint32Array): void {
  do globalThis.crypto.getRandomValues(state);
  while (state.every((word) => word === 0));
}

/** A generator seeded (and periodically re-seeded) from the platform CSPRNG: use for real noise. */
export function createCryptoRng(): RandomSource {
  const state = new Uint32Array(4);
  fillFromCsprng(state);
  return new Xoshiro128StarStar(state, fillFromCsprng);
}
