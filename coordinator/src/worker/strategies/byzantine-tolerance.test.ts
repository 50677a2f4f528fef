import { StrategyConfigSchema } from '@flotilla/protocol';
import { describe, expect, it } from 'vitest';
import { byzantineTolerance } from './registry.js';

const config = (input: object) => StrategyConfigSchema.parse(input);

describe('byzantineTolerance', () => {
  it('is 0 for mean-type rules and the breakdown point for robust ones', () => {
    expect(byzantineTolerance(config({ name: 'fedavg' }), 10)).toBe(0);
    expect(byzantineTolerance(config({ name: 'fedadam' }), 10)).toBe(0);
    expect(byzantineTolerance(config({ name: 'norm-bounding', normBound: 1 }), 10)).toBe(0);
    // Median: fewer than half (4 of 10, 4 of 9).
    expect(byzantineTolerance(config({ name: 'median' }), 10)).toBe(4);
    expect(byzantineTolerance(config({ name: 'median' }), 9)).toBe(4);
    // Trimmed mean: floor(β·n) cut per end.
    expect(byzantineTolerance(config({ name: 'trimmed-mean', beta: 0.3 }), 10)).toBe(3);
    expect(byzantineTolerance(config({ name: 'trimmed-mean', beta: 0.1 }), 8)).toBe(0);
    // Krum: f, while n > 2f + 2; Bulyan: while n >= 4f + 3.
    expect(byzantineTolerance(config({ name: 'krum', byzantine: 2 }), 10)).toBe(2);
    expect(byzantineTolerance(config({ name: 'multi-krum', byzantine: 4 }), 8)).toBe(2);
    expect(byzantineTolerance(config({ name: 'bulyan', byzantine: 2 }), 10)).toBe(1);
  });
});
