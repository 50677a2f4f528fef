import { STRATEGY_NAMES, type StrategyName } from '@flotilla/protocol';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { STRATEGY_REGISTRY, type StrategyImplementation } from './registry.js';

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
