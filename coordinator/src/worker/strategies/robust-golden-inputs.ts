// Seeded inputs for the robust strategies' regression fixture (robust-golden.json): the outputs
// stored there were computed from these inputs by the sort-per-coordinate and pairwise-loop
// implementations the kernels replaced, so the kernels can be held to them bit for bit.
// Test support only; nothing in the worker imports it.
import { at, f32At } from '@flotilla/protocol';
import { seededRandom } from './test-random.js';
import type { WeightedUpdate } from './types.js';

/**
 * - `gaussian`: roughly normal values around a shared per-coordinate centre (updates of one task);
 * - `spread`: values over 60 binades, exact zeros, -0, subnormals, ±Inf-free outliers, and two
 *   bit-for-bit copies of earlier updates (colluding devices);
 * - `integers`: small integers, so columns and Krum scores are full of exact ties;
 * - `nan`: `gaussian` with a NaN in one update (sorted last, so a median may still be finite).
 */
export type GoldenKind = 'gaussian' | 'spread' | 'integers' | 'nan';

export interface GoldenInput {
  kind: GoldenKind;
  seed: number;
  count: number;
  length: number;
}

function gaussian(random: () => number): number {
  // Box–Muller; 1 - u keeps the logarithm finite.
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** The updates of one fixture case, reproducible from its description. */
export function goldenUpdates(input: GoldenInput): WeightedUpdate[] {
  const random = seededRandom(input.seed);
  const { count, length, kind } = input;
  const centre = Float32Array.from({ length }, () => gaussian(random) * 0.01);
  const updates = Array.from({ length: count }, () => {
    const values = new Float32Array(length);
    for (let i = 0; i < length; i++) values[i] = sample(kind, random, f32At(centre, i));
    return { values, weight: 1 + Math.floor(random() * 50) };
  });
  if (kind === 'spread' && count >= 4) {
    // Two colluders repeat an earlier update exactly.
    const source = at(updates, 1).values;
    for (const k of [count - 1, count - 2]) updates[k] = { values: source.slice(), weight: 7 };
  }
  if (kind === 'nan') {
    const victim = updates[Math.floor(random() * count)];
    if (victim !== undefined) victim.values[Math.floor(random() * length)] = Number.NaN;
  }
  return updates;
}

function sample(kind: GoldenKind, random: () => number, centre: number): number {
  switch (kind) {
    case 'gaussian':
    case 'nan':
      return centre + gaussian(random) * 0.003;
    case 'integers':
      return Math.floor(random() * 7) - 3;
    case 'spread': {
      const r = random();
      if (r < 0.1) return 0;
      if (r < 0.15) return -0;
      if (r < 0.18) return (random() - 0.5) * 2 ** -140; // subnormal in f32
      if (r < 0.2) return (random() - 0.5) * 1e6; // outlier
      return (random() < 0.5 ? -1 : 1) * 2 ** (random() * 60 - 40);
    }
  }
}
