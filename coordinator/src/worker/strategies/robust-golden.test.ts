// The robust strategies against outputs stored before their kernels were rewritten (selection
// networks over column blocks, Gram-matrix distances): bit for bit the same aggregate (its SHA-256),
// the same selection and details. Krum scores may differ in their last bits (they are computed
// from a Gram matrix now) and are held to the error bound documented in krum-distances.ts.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { FlotillaError, StrategyConfigSchema } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { aggregate, type AggregationConfig } from './index.js';
import { goldenUpdates } from './robust-golden-inputs.js';

// JSON has no NaN: a NaN score (an update with a NaN in it) is stored as null.
const DetailsSchema = z.record(z.string(), z.union([z.number(), z.string(), z.array(z.number().nullable())]));
const GoldenSchema = z.object({
  about: z.string(),
  cases: z.array(
    z.object({
      input: z.object({
        kind: z.enum(['gaussian', 'spread', 'integers', 'nan']),
        seed: z.number().int(),
        count: z.number().int(),
        length: z.number().int(),
      }),
      config: z.looseObject({
        name: z.string(),
        multiKrumWeighting: z.enum(['weighted', 'uniform']).optional(),
      }),
      outcome: z.union([
        z.object({
          sha256: z.string(),
          head: z.array(z.number()),
          selected: z.array(z.number().int()),
          details: DetailsSchema,
        }),
        z.object({ error: z.string() }),
      ]),
    }),
  ),
});

const golden = GoldenSchema.parse(
  JSON.parse(readFileSync(new URL('./robust-golden.json', import.meta.url), 'utf8')),
);

function configOf(raw: z.infer<typeof GoldenSchema>['cases'][number]['config']): AggregationConfig {
  const { multiKrumWeighting, ...rest } = raw;
  return { ...StrategyConfigSchema.parse(rest), ...(multiKrumWeighting ? { multiKrumWeighting } : {}) };
}

function label(c: z.infer<typeof GoldenSchema>['cases'][number]): string {
  const { name, ...options } = c.config;
  return `${name} ${JSON.stringify(options)} on ${c.input.count} x ${c.input.length} ${c.input.kind}`;
}

/** Relative tolerance on a Krum score (see `scoreTolerance` in krum-distances.ts for the bound). */
const SCORE_RELATIVE = 1e-9;

describe('robust strategies reproduce the stored outputs bit for bit', () => {
  it.each(golden.cases.map((c) => [label(c), c] as const))('%s', (_, c) => {
    const updates = goldenUpdates(c.input);
    let result;
    try {
      result = aggregate(configOf(c.config), updates).result;
    } catch (error) {
      if (!FlotillaError.is(error)) throw error;
      expect({ error: error.code }).toEqual(c.outcome);
      return;
    }
    if ('error' in c.outcome) throw new Error(`expected ${c.outcome.error}, got a result`);
    const bytes = Buffer.from(result.values.buffer, result.values.byteOffset, result.values.byteLength);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(c.outcome.sha256);
    expect(result.selected).toEqual(c.outcome.selected);
    const { scores, ...details } = result.details;
    const { scores: expectedScores, ...expectedDetails } = c.outcome.details;
    expect(details).toEqual(expectedDetails);
    if (expectedScores === undefined) {
      expect(scores).toBeUndefined();
      return;
    }
    if (!Array.isArray(scores) || !Array.isArray(expectedScores)) throw new Error('scores are not lists');
    expect(scores.length).toBe(expectedScores.length);
    const scale = Math.max(...expectedScores.map((s) => (s === null ? 0 : Math.abs(s))));
    scores.forEach((s, i) => {
      const expected = expectedScores[i];
      if (expected === null) expect(s).toBeNaN();
      else expect(Math.abs(s - (expected ?? NaN))).toBeLessThanOrEqual(SCORE_RELATIVE * scale);
    });
  });
});
