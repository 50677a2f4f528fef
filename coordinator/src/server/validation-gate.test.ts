import { describe, expect, it } from 'vitest';
import { ValidationGate } from './validation-gate.js';

/** A task that records whether it waited, and ends when `release` is called. */
function heldTask(seen: boolean[]): { task: (waited: boolean) => Promise<void>; release: () => void } {
  let release = () => undefined as void;
  const done = new Promise<void>((resolve) => (release = resolve));
  return {
    task: (waited) => {
      seen.push(waited);
      return done;
    },
    release,
  };
}

describe('ValidationGate', () => {
  it('tells a task whether it waited behind the same device or for bytes', async () => {
    const gate = new ValidationGate({ maxBytes: 100 });
    const seen: boolean[] = [];
    const first = heldTask(seen);
    const sameDevice = heldTask(seen);
    const needsBytes = heldTask(seen);
    const runs = [
      gate.run('a', 60, first.task),
      gate.run('a', 10, sameDevice.task),
      gate.run('b', 60, needsBytes.task),
    ];
    await new Promise((resolve) => setImmediate(resolve));
    // Only the first runs: 'a' again waits for it, 'b' for its 60 bytes.
    expect(seen).toEqual([false]);
    first.release();
    await runs[0];
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen.slice(1).sort()).toEqual([true, true]);
    sameDevice.release();
    needsBytes.release();
    await Promise.all(runs);
    const alone = heldTask(seen);
    alone.release();
    await gate.run('c', 10, alone.task);
    expect(seen.at(-1)).toBe(false);
  });
});
