import { afterEach, describe, expect, it, vi } from 'vitest';
import { alieZMax } from '../attacks/little-is-enough.js';
import { CollusionBroker } from './collusion-broker.js';
import type { HostMessage } from './host-messages.js';

const update = (...values: number[]) => new Map([['w', Float32Array.from(values)]]);

describe('CollusionBroker', () => {
  afterEach(() => vi.useRealTimers());

  it("crafts once every reporting participant has shared, from the round's honest updates", () => {
    const sent: HostMessage[] = [];
    const broker = new CollusionBroker({
      attack: 'little-is-enough',
      byzantine: new Set(['a1', 'a2']),
      send: (m) => sent.push(m),
    });
    broker.startRound(3, ['h1', 'h2', 'a1', 'a2']);
    broker.receive(3, 'h1', update(1));
    broker.receive(3, 'a1', update(3));
    broker.receive(2, 'h2', update(100)); // an older round: ignored
    broker.receive(3, 'stranger', update(100)); // not a participant: ignored
    broker.receive(3, 'h2', null); // no update (its validation gate skipped)
    expect(sent).toEqual([]);
    broker.receive(3, 'a2', update(5));
    // μ = 3, σ = 2 over the three updates; n = 4 workers, m = 2 attackers.
    const z = alieZMax(4, 2);
    expect(sent).toEqual([{ type: 'crafted', index: 3, delta: update(3 - 2 * z) }]);
    broker.stop();
  });

  it('crafts from what arrived when a participant never reports, and nothing in a round without attackers', () => {
    vi.useFakeTimers();
    const sent: HostMessage[] = [];
    const broker = new CollusionBroker({
      attack: 'little-is-enough',
      byzantine: new Set(['a1']),
      send: (m) => sent.push(m),
      timeoutMs: 1000,
    });
    broker.startRound(0, ['h1', 'h2']);
    broker.receive(0, 'h1', update(1));
    broker.receive(0, 'h2', update(2));
    expect(sent).toEqual([]);
    broker.startRound(1, ['h1', 'a1', 'h2']);
    broker.receive(1, 'a1', update(4));
    vi.advanceTimersByTime(1000);
    expect(sent).toEqual([{ type: 'crafted', index: 1, delta: update(4) }]);
    broker.stop();
  });
});
