import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReadArena, ReadArenaPool } from './read-arena.js';

describe('a read arena', () => {
  it('hands out 8-byte-aligned views front to back until it is full, and counts what it could not place', () => {
    const arena = new ReadArena(new SharedArrayBuffer(32));
    const a = arena.take(5);
    const b = arena.take(8);
    expect([a?.byteOffset, a?.byteLength, b?.byteOffset, b?.byteLength]).toEqual([0, 5, 8, 8]);
    expect(a?.buffer).toBe(arena.buffer);
    // 16 bytes are left: 17 do not fit, 16 do.
    expect(arena.take(17)).toBeNull();
    expect(arena.take(16)?.byteOffset).toBe(16);
    expect(arena.take(1)).toBeNull();
    // Everything asked, aligned: 8 + 8 + 24 + 16 + 8.
    expect(arena.demand).toBe(64);
    arena.reset();
    expect(arena.demand).toBe(0);
    expect(arena.take(32)?.byteOffset).toBe(0);
    expect(() => arena.take(-1)).toThrow(/cannot take -1 bytes/);
  });
});

describe('a pool of read arenas', () => {
  afterEach(() => vi.useRealTimers());

  it('grows its arenas to the largest batch seen, so the next batch fits', async () => {
    const pool = new ReadArenaPool({ keep: 1 });
    // The first batch finds no room and reads into buffers of its own.
    await pool.use((arena) => {
      expect(arena.take(1000)).toBeNull();
      expect(arena.take(24)).toBeNull();
    });
    const placed = await pool.use((arena) => [arena.take(1000), arena.take(24)]);
    expect(placed.map((view) => view?.byteOffset)).toEqual([0, 1000]);
    // The same arena comes back for the next batch.
    const again = await pool.use((arena) => arena.take(8));
    expect(again?.buffer).toBe(placed[0]?.buffer);
  });

  it('gives each concurrent batch an arena of its own and keeps at most `keep` of them', async () => {
    const pool = new ReadArenaPool({ keep: 2 });
    await pool.use((arena) => arena.take(64));
    const buffers: SharedArrayBuffer[] = [];
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const batches = [1, 2, 3].map(() =>
      pool.use(async (arena) => {
        buffers.push(arena.buffer);
        await gate;
      }),
    );
    release();
    await Promise.all(batches);
    expect(new Set(buffers).size).toBe(3);
    expect(pool.pooled).toBe(2);
  });

  it('returns the arena when the batch fails, and lets idle arenas go', async () => {
    vi.useFakeTimers();
    const pool = new ReadArenaPool({ keep: 1, idleMs: 1_000 });
    await expect(
      pool.use(() => {
        throw new Error('read failed');
      }),
    ).rejects.toThrow('read failed');
    expect(pool.pooled).toBe(1);
    vi.advanceTimersByTime(999);
    expect(pool.pooled).toBe(1);
    vi.advanceTimersByTime(1);
    expect(pool.pooled).toBe(0);
  });

  it('makes no arena above its size cap', async () => {
    const pool = new ReadArenaPool({ keep: 1, maxArenaBytes: 100 });
    await pool.use((arena) => arena.take(200));
    // The next arena is capped at 100 bytes: a batch of 200 reads the rest into buffers of its own.
    await pool.use((arena) => {
      expect(arena.capacity).toBe(100);
      expect(arena.take(80)?.byteOffset).toBe(0);
      expect(arena.take(120)).toBeNull();
    });
    expect(pool.pooled).toBe(1);
    expect(() => new ReadArenaPool({ keep: -1 })).toThrow(/>= 0/);
  });
});
