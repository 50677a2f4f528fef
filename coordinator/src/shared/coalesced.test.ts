import { describe, expect, it } from 'vitest';
import { coalesced } from './coalesced.js';

/** A task whose runs are released by hand, recording what each run saw. */
function manualTask() {
  const runs: Array<{ saw: number; release: () => void }> = [];
  let version = 0;
  const task = () =>
    new Promise<void>((resolve) => {
      runs.push({ saw: version, release: resolve });
    });
  return { runs, task, bump: () => ++version };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('coalesced', () => {
  it('shares one later run among every call made while a run is in progress', async () => {
    const { runs, task, bump } = manualTask();
    const sync = coalesced(task);
    bump();
    const first = sync();
    await settle();
    expect(runs).toHaveLength(1);
    // Three changes while run 1 is in progress: none of them is covered by run 1.
    const later = [bump(), bump(), bump()].map(() => sync());
    let laterDone = false;
    void Promise.all(later).then(() => (laterDone = true));
    runs[0]?.release();
    await first;
    await settle();
    expect(laterDone).toBe(false);
    expect(runs).toHaveLength(2);
    expect(runs[1]?.saw).toBe(4);
    runs[1]?.release();
    await Promise.all(later);
    expect(runs).toHaveLength(2);
  });

  it('never makes a caller wait for more than the run after its call, under a steady stream of calls', async () => {
    const { runs, task, bump } = manualTask();
    const sync = coalesced(task);
    const done: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      bump();
      const k = done.push(false) - 1;
      void sync().then(() => (done[k] = true));
      await settle();
      // Each call arrives during the run started for the previous one; releasing that run lets
      // every caller before this one finish.
      runs[runs.length - 1]?.release();
      await settle();
      await settle();
      expect(done.slice(0, k).every(Boolean)).toBe(true);
    }
    runs[runs.length - 1]?.release();
    await settle();
    await settle();
    expect(done.every(Boolean)).toBe(true);
  });
});
