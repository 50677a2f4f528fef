import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STRATEGY_NAMES, type StrategyName } from '@flotilla/protocol';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { STRATEGY_REGISTRY, type StrategyImplementation } from './registry.js';

const root = join(import.meta.dirname, '..', '..', '..', '..');

describe('the strategy registry', () => {
  it('is typed as a complete table: a name without a row does not compile', () => {
    expectTypeOf(STRATEGY_REGISTRY).toEqualTypeOf<Readonly<Record<StrategyName, StrategyImplementation>>>();
    const { bulyan: _bulyan, ...withoutBulyan } = STRATEGY_REGISTRY;
    // @ts-expect-error -- 'bulyan' is missing: the compiler names it
    const incomplete: Readonly<Record<StrategyName, StrategyImplementation>> = withoutBulyan;
    expect(Object.keys(incomplete)).not.toContain('bulyan');
  });

  it('has exactly one row per strategy name of the protocol', () => {
    expect(Object.keys(STRATEGY_REGISTRY).sort()).toEqual([...STRATEGY_NAMES].sort());
  });
});

describe('docs/adding-a-strategy.md', () => {
  const page = readFileSync(join(root, 'docs', 'adding-a-strategy.md'), 'utf8');
  const spans = [...page.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');

  const paths = spans.filter((s) => /^[\w-]+\/[\w/.-]*\.(ts|md)$/.test(s));

  it('names only files that exist (placeholders aside)', () => {
    expect(paths.length).toBeGreaterThanOrEqual(6);
    expect(paths.filter((p) => !existsSync(join(root, p)))).toEqual([]);
  });

  it('names only identifiers that occur in the files it names', () => {
    const sources = paths.map((p) => readFileSync(join(root, p), 'utf8'));
    const identifiers = spans.filter((s) => /^[A-Za-z_]\w+$/.test(s));
    expect(identifiers).toContain('STRATEGY_REGISTRY');
    const missing = identifiers.filter(
      (id) => !sources.some((source) => new RegExp(`\\b${id}\\b`).test(source)),
    );
    expect(missing).toEqual([]);
  });
});
