import { FlotillaError } from '@flotilla/protocol';
import { stateFromPath, stateFromSeed, xoshiro128StarStar } from './xoshiro128.js';

/**
 * A seeded random stream (xoshiro128**). Every simulation draw goes through one of these so that a
 * scenario with the same seed produces the same partitions, attacks and training order.
 *
 * `fork(label)` derives an independent child stream from this stream's *name* (root seed plus the
 * labels on the way down), not from its current state: `rng.fork('device-3')` is the same stream
 * whether or not anything was drawn from `rng` or from `rng.fork('device-2')` first.
 */
export class Rng {
  readonly path: string;
  private readonly state: Uint32Array;

  private constructor(path: string, state: Uint32Array) {
    this.path = path;
    this.state = state;
  }

  /** The root stream of a seed (a non-negative safe integer). */
  static fromSeed(seed: number): Rng {
    return new Rng(`seed:${seed}`, stateFromSeed(seed));
  }

  /** An independent stream named `label` below this one. */
  fork(label: string): Rng {
    const path = `${this.path}/${label}`;
    return new Rng(path, stateFromPath(path));
  }

  /** Next raw 32-bit output, an integer in [0, 2^32). */
  nextUint32(): number {
    return xoshiro128StarStar(this.state);
  }

  /** Uniform in [0, 1) with 53 random bits (two outputs, as in the xoshiro authors' double recipe). */
  next(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67_108_864 + low) / 9_007_199_254_740_992;
  }

  /** Uniform integer in [0, maxExclusive), unbiased (rejection on the 32-bit range). */
  int(maxExclusive: number): number {
    if (!Number.isInteger(maxExclusive) || maxExclusive <= 0 || maxExclusive > 0x1_0000_0000) {
      throw new FlotillaError(
        'BAD_REQUEST',
        `int(maxExclusive) needs an integer in [1, 2^32], got ${maxExclusive}`,
      );
    }
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % maxExclusive);
    for (;;) {
      const value = this.nextUint32();
      if (value < limit) return value % maxExclusive;
    }
  }

  /** Normal(mean, std) by Box–Muller; the second variate of each pair is discarded for simplicity. */
  normal(mean = 0, std = 1): number {
    const u1 = 1 - this.next(); // (0, 1]: log(0) never happens
    const u2 = this.next();
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /**
   * Gamma(shape, scale) by Marsaglia & Tsang (2000), "A simple method for generating gamma
   * variables". For shape < 1 it uses their boost: Gamma(a) = Gamma(a + 1) · U^(1/a).
   */
  gamma(shape: number, scale = 1): number {
    if (!(shape > 0) || !(scale > 0)) {
      throw new FlotillaError('BAD_REQUEST', `gamma needs shape > 0 and scale > 0, got ${shape}, ${scale}`);
    }
    if (shape < 1) {
      const boost = Math.pow(1 - this.next(), 1 / shape);
      return this.gamma(shape + 1, scale) * boost;
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = 1 - this.next();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v * scale;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v * scale;
    }
  }

  /** Dirichlet(alphas): independent Gamma(alpha_i, 1) draws, normalised to sum to 1. */
  dirichlet(alphas: readonly number[]): number[] {
    const draws = alphas.map((alpha) => this.gamma(alpha));
    const total = draws.reduce((sum, value) => sum + value, 0);
    // With very small alphas every draw can underflow to 0; all mass then goes to one random index.
    if (!(total > 0)) {
      const winner = this.int(alphas.length);
      return alphas.map((_, index) => (index === winner ? 1 : 0));
    }
    return draws.map((value) => value / total);
  }

  /** Shuffles `items` in place (Fisher–Yates, Durstenfeld's version) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i -= 1) {
      const j = this.int(i + 1);
      const a = items[i] as T;
      items[i] = items[j] as T;
      items[j] = a;
    }
    return items;
  }

  /** A uniformly random permutation of 0..n-1. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, index) => index));
  }

  /** One uniformly chosen element. */
  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new FlotillaError('BAD_REQUEST', 'choice from an empty list');
    return items[this.int(items.length)] as T;
  }
}

/** The root random stream of a scenario seed. */
export function createRng(seed: number): Rng {
  return Rng.fromSeed(seed);
}
