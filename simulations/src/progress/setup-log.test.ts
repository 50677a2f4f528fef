import { describe, expect, it } from 'vitest';
import { createSetupLog } from './setup-log.js';

describe('setup log', () => {
  it('prints each finished step with its time, and paces counters', async () => {
    let clock = 0;
    const lines: string[] = [];
    const log = createSetupLog({ stream: { write: (s: string) => lines.push(s) }, now: () => clock });
    const result = await log.step(
      'base model',
      () => {
        clock += 1500;
        return { cached: true };
      },
      (r) => (r.cached ? 'from the cache' : 'trained'),
    );
    expect(result).toEqual({ cached: true });
    log.count('enrolled', 100, 10_000); // the first call starts the counter's clock
    clock = 3600;
    log.count('enrolled', 4000, 10_000);
    clock = 4000;
    log.count('enrolled', 6000, 10_000); // 0.4 s after the last line: skipped
    log.count('enrolled', 10_000, 10_000); // the end is always printed
    clock = 4500;
    log.finish();
    expect(lines).toEqual([
      'setup: base model: from the cache (1.5 s)\n',
      'setup: enrolled: 4,000 of 10,000\n',
      'setup: enrolled: 10,000 of 10,000\n',
      'setup: ready in 4.5 s\n',
    ]);
  });
});
