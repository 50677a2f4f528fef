import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RoundTimers } from './round-timers.js';

describe('RoundTimers', () => {
  beforeEach(() => vi.useFakeTimers({ now: 10_000 }));
  afterEach(() => vi.useRealTimers());

  function timers(mayRun = () => true) {
    const ran: string[] = [];
    const errors: string[] = [];
    const t = new RoundTimers({ mayRun, onError: (_error, timer) => errors.push(timer) });
    const action = (label: string) => () => {
      ran.push(label);
      return Promise.resolve();
    };
    return { t, ran, errors, action };
  }

  it('runs an action at its time, and a past time at once', async () => {
    const { t, ran, action } = timers();
    t.arm('r:1', 'selection', 10_500, action('selection'));
    t.arm('r:1', 'reporting', 9_000, action('reporting'));
    await vi.advanceTimersByTimeAsync(0);
    expect(ran).toEqual(['reporting']);
    await vi.advanceTimersByTimeAsync(499);
    expect(ran).toEqual(['reporting']);
    await vi.advanceTimersByTimeAsync(1);
    expect(ran).toEqual(['reporting', 'selection']);
  });

  it("replaces a round's timer of the same kind, and cancels by round and kind", async () => {
    const { t, ran, action } = timers();
    t.arm('r:1', 'selection', 11_000, action('first'));
    t.arm('r:1', 'selection', 12_000, action('second'));
    t.arm('r:2', 'selection', 11_000, action('other round'));
    t.arm('r:1', 'reporting', 11_000, action('reporting'));
    t.cancel('r:1', 'reporting');
    await vi.advanceTimersByTimeAsync(5_000);
    expect(ran).toEqual(['other round', 'second']);
    t.arm('r:3', 'reselect', 16_000, action('reselect'));
    t.cancelAll();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(ran).toEqual(['other round', 'second']);
  });

  it('skips the action when it may not run, and reports a failed action by its timer', async () => {
    let leading = false;
    const { t, ran, errors, action } = timers(() => leading);
    t.arm('r:1', 'selection', 10_100, action('skipped'));
    await vi.advanceTimersByTimeAsync(100);
    expect(ran).toEqual([]);
    leading = true;
    t.arm('r:1', 'reporting', 10_200, () => Promise.reject(new Error('redis down')));
    await vi.advanceTimersByTimeAsync(100);
    expect(errors).toEqual(['r:1:reporting']);
  });
});
