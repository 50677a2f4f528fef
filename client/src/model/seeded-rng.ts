import { SeededRandom } from '@flotilla/protocol';

/**
 * The uniform source every seeded draw on the device uses (batch shuffles, replay sampling,
 * stochastic rounding). Structurally what protocol's `SeededRandom` (xoshiro128**) provides, so
 * a `SeededRandom` can be passed wherever a `SeededRng` is asked for.
 */
export interface SeededRng {
  /** Uniform in [0, 1). */
  nextFloat(): number;
  /** Uniform unsigned 32-bit integer. */
  nextUint32(): number;
}

export function createRng(seed: number): SeededRng {
  return new SeededRandom(seed >>> 0);
}

/** Uniform integer in [0, n). */
export function nextInt(rng: SeededRng, n: number): number {
  return Math.floor(rng.nextFloat() * n);
}

/** Fisher–Yates shuffle of [0, n) driven by `rng`. */
export function shuffledIndices(n: number, rng: SeededRng): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = nextInt(rng, i + 1);
    const tmp = order[i] ?? 0;
    order[i] = order[j] ?? 0;
    order[j] = tmp;
  }
  return order;
}
