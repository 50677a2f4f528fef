import { describe, expect, it } from 'vitest';
import { installNativeSha256 } from '@flotilla/protocol/node';
import { warmUpShardMath } from './shard-math-warm-up.js';

describe('shard math warm-up', () => {
  it('runs every step of both passes: no synthetic delta is refused, every one is screened and gets a cosine', () => {
    installNativeSha256();
    const { summed, screened, cosines } = warmUpShardMath(12, 256);
    expect(summed).toBe(12);
    expect(screened).toBe(12);
    expect(cosines).toHaveLength(12);
    // Each synthetic delta is the reference plus noise of 0.3 its size: well aligned with it.
    for (const cosine of cosines) expect(cosine).toBeGreaterThan(0.8);
  });
});
