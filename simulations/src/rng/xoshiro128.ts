import { FlotillaError, fromHex, sha256Hex, utf8 } from '@flotilla/protocol';

/**
 * splitmix32: the 32-bit counterpart of Vigna's splitmix64, used (as the xoshiro authors
 * recommend) only to expand a small seed into the 128-bit xoshiro state. One step:
 * `state += 0x9e3779b9; z = state; z = (z ^ z>>>16) * 0x85ebca6b; z = (z ^ z>>>13) * 0xc2b2ae35; z ^= z>>>16`
 * (the golden-ratio increment followed by MurmurHash3's fmix32 finaliser), all mod 2^32.
 */
export function splitmix32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * xoshiro128** 1.1 (Blackman & Vigna, https://prng.di.unimi.it/xoshiro128starstar.c): 128-bit
 * state, period 2^128 − 1, fast on 32-bit integer arithmetic which is what JavaScript does well.
 * The state is mutated in place.
 */
export function xoshiro128StarStar(state: Uint32Array): number {
  const s0 = state[0] ?? 0;
  const s1 = state[1] ?? 0;
  const s2 = state[2] ?? 0;
  const s3 = state[3] ?? 0;
  const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
  const t = (s1 << 9) >>> 0;
  const n2 = (s2 ^ s0) >>> 0;
  const n3 = (s3 ^ s1) >>> 0;
  const n1 = (s1 ^ n2) >>> 0;
  const n0 = (s0 ^ n3) >>> 0;
  state[0] = n0;
  state[1] = n1;
  state[2] = (n2 ^ t) >>> 0;
  state[3] = rotl(n3, 11);
  return result;
}

/** The 128-bit state for a numeric seed: four splitmix32 outputs. */
export function stateFromSeed(seed: number): Uint32Array {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new FlotillaError('BAD_REQUEST', `seed must be a non-negative safe integer, got ${seed}`);
  }
  // Fold the high bits in so seeds above 2^32 still give distinct streams.
  const next = splitmix32((seed >>> 0) ^ Math.floor(seed / 0x1_0000_0000));
  return Uint32Array.of(next(), next(), next(), next());
}

/**
 * The 128-bit state of a derived stream: the first 16 bytes (little-endian words) of
 * SHA-256("flotilla/rng/v1" 0x00 path). The path names the stream from the root seed down, so a
 * fork depends only on its name, never on how many numbers any other stream has drawn.
 */
export function stateFromPath(path: string): Uint32Array {
  const head = utf8('flotilla/rng/v1');
  const body = utf8(path);
  const message = new Uint8Array(head.length + 1 + body.length);
  message.set(head, 0);
  message.set(body, head.length + 1);
  const digest = fromHex(sha256Hex(message));
  const view = new DataView(digest.buffer, digest.byteOffset, 16);
  const state = Uint32Array.of(
    view.getUint32(0, true),
    view.getUint32(4, true),
    view.getUint32(8, true),
    view.getUint32(12, true),
  );
  // The all-zero state is xoshiro's one fixed point; a hash hitting it is 2^-128 but cheap to exclude.
  if (state.every((word) => word === 0)) state[0] = 1;
  return state;
}
