import { readFileSync } from 'node:fs';
import { StrategyConfigSchema, type StrategyConfig } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { aggregate, type AggregationConfig, type WeightedUpdate } from './index.js';

// Other frameworks' published vectors (Flower, TFF, NVFlare), see the file's "about".
const VECTORS_URL = new URL('../../../../../shared/vectors/aggregation-published.json', import.meta.url);

const CaseSchema = z.object({
  name: z.string(),
  source: z.string(),
  clients: z.array(z.array(z.number())),
  n: z.array(z.number()).optional(),
  weights: z.array(z.number()).optional(),
  f: z.number().int().optional(),
  keep: z.number().int().optional(),
  beta: z.number().optional(),
  clip: z.number().optional(),
  zeroing_norm: z.number().optional(),
  expected: z.array(z.number()).optional(),
  expected_sum: z.array(z.number()).optional(),
  clipped_count: z.number().int().optional(),
});
type VectorCase = z.infer<typeof CaseSchema>;

const file = z
  .object({ cases: z.array(z.looseObject({ name: z.string() })) })
  .parse(JSON.parse(readFileSync(VECTORS_URL, 'utf8')));
const byName = new Map(file.cases.map((c) => [c.name, c]));

function vector(name: string): VectorCase {
  return CaseSchema.parse(byName.get(name));
}

function updatesOf(c: VectorCase): WeightedUpdate[] {
  const weights = c.n ?? c.weights;
  return c.clients.map((values, i) => ({ values: Float32Array.from(values), weight: weights?.[i] ?? 1 }));
}

function config(input: Partial<StrategyConfig> & { name: StrategyConfig['name'] }): StrategyConfig {
  return StrategyConfigSchema.parse(input);
}

function expectVector(actual: Float32Array, expected: number[] | undefined): void {
  if (expected === undefined) throw new Error('vector has no expected values');
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(Math.abs((actual[i] ?? NaN) - e)).toBeLessThanOrEqual(1e-5));
}

const meanCases: Array<[string, (c: VectorCase) => AggregationConfig]> = [
  ['krum', (c) => config({ name: 'krum', byzantine: c.f })],
  ['multi_krum', (c) => config({ name: 'multi-krum', byzantine: c.f, keep: c.keep })],
  ['median', () => config({ name: 'median' })],
  ['trimmed_mean', (c) => config({ name: 'trimmed-mean', beta: c.beta })],
  ['trimmed_mean_scalar', (c) => config({ name: 'trimmed-mean', beta: c.beta })],
  ['bulyan_f0', (c) => config({ name: 'bulyan', byzantine: c.f })],
  ['fedavg_weighted', () => config({ name: 'fedavg' })],
  ['clip_then_weighted_mean', (c) => config({ name: 'norm-bounding', normBound: c.clip })],
  [
    'zeroing_weighted_mean',
    (c) => ({ ...config({ name: 'norm-bounding', normBound: c.zeroing_norm }), normBoundingMode: 'zero' }),
  ],
  ['weighted_mean', () => config({ name: 'fedavg' })],
  ['site_weight_times_steps', () => config({ name: 'fedavg' })],
];

describe('published aggregation vectors', () => {
  it.each(meanCases)('%s', (name, makeConfig) => {
    const c = vector(name);
    expectVector(aggregate(makeConfig(c), updatesOf(c)).result.values, c.expected);
  });

  it('clip_then_sum (TFF): clipped mean times the total weight is the clipped sum', () => {
    const c = vector('clip_then_sum');
    const { result } = aggregate(config({ name: 'norm-bounding', normBound: c.clip }), updatesOf(c));
    const sum = result.values.map((v) => v * Number(result.details.totalWeight));
    expectVector(sum, c.expected_sum);
    expect(result.details.clippedCount).toBe(c.clipped_count);
  });
});
