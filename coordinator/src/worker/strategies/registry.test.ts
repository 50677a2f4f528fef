import { STRATEGY_NAMES, STRATEGY_TRAITS, type StrategyName } from '@flotilla/protocol';
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

  it('names a DP mean exactly for the strategies protocol marks dpCompatible', () => {
    const withMean = STRATEGY_NAMES.filter((name) => STRATEGY_REGISTRY[name].dpMean !== null);
    expect(withMean.sort()).toEqual(
      STRATEGY_NAMES.filter((name) => STRATEGY_TRAITS[name].dpCompatible).sort(),
    );
  });

  it('takes each DP mean from a mean-type row, not a server optimizer or a robust rule', () => {
    for (const name of STRATEGY_NAMES) {
      const mean = STRATEGY_REGISTRY[name].dpMean;
      if (mean === null) continue;
      expect(STRATEGY_TRAITS[mean], `${name} → ${mean}`).toMatchObject({
        dpCompatible: true,
        serverOptimizer: false,
      });
      expect(STRATEGY_REGISTRY[mean].dpMean, `${name} → ${mean}`).toBe(mean);
    }
  });
});
