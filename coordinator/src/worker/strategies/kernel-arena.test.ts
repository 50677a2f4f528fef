import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KernelArena, MAX_ARENA_BYTES, updateAllocator } from './kernel-arena.js';
import { GROUP, instantiateSimdKernel } from './simd-kernel.js';
import { seededRandom } from './test-random.js';

describe('SIMD kernel', () => {
  it('axpyGroup adds its inputs in order: bit for bit four axpy calls and the f64 TS loop', () => {
    expect(GROUP).toBe(4);
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 64 }), (seed, blocks) => {
        const random = seededRandom(seed);
        const count = blocks * 8;
        const kernel = instantiateSimdKernel();
        if (kernel === null) throw new Error('no WebAssembly SIMD');
        kernel.memory.grow(1);
        const f64 = (offset: number): Float64Array => new Float64Array(kernel.memory.buffer, offset, count);
        const f32 = (offset: number): Float32Array => new Float32Array(kernel.memory.buffer, offset, count);
        const inputs = [0, 1, 2, 3].map((j) => f32(2 * count * 8 + j * count * 4));
        for (const x of inputs)
          for (let i = 0; i < count; i++) x[i] = (random() - 0.5) * 10 ** (random() * 8 - 4);
        const w = [0, 1, 2, 3].map(() => random() * 1000);
        const [group, single] = [f64(0), f64(count * 8)];
        const start = Float64Array.from({ length: count }, () => random() - 0.5);
        group.set(start);
        single.set(start);
        const ptr = inputs.map((x) => x.byteOffset) as [number, number, number, number];
        const [w0, w1, w2, w3] = w as [number, number, number, number];
        kernel.axpyGroup(group.byteOffset, count, ...ptr, w0, w1, w2, w3);
        ptr.forEach((p, j) => kernel.axpy(single.byteOffset, count, p, w[j] ?? NaN));
        const reference = Float64Array.from(start);
        inputs.forEach((x, j) => {
          for (let i = 0; i < count; i++) reference[i] = (reference[i] ?? 0) + (w[j] ?? NaN) * (x[i] ?? NaN);
        });
        expect(Array.from(group)).toEqual(Array.from(reference));
        expect(Array.from(single)).toEqual(Array.from(reference));
      }),
      { numRuns: 30 },
    );
  });
});

describe('KernelArena', () => {
  it('hands out zeroed, 16-byte aligned views of one memory and knows what it owns', () => {
    const arena = KernelArena.create(1 << 20);
    if (arena === null) throw new Error('no WebAssembly SIMD');
    const a = arena.float32(3);
    const b = arena.float64(5);
    expect(a?.byteOffset).toBe(0);
    expect(b?.byteOffset).toBe(16);
    expect(Array.from(b ?? [])).toEqual([0, 0, 0, 0, 0]);
    expect(a && KernelArena.of(a)).toBe(arena);
    expect(KernelArena.of(new Float32Array(3))).toBeNull();
    expect(arena.float32(1 << 20)).toBeNull(); // 4 MiB does not fit in 1 MiB
  });

  it('release frees back to a mark and clears reused memory', () => {
    const arena = KernelArena.create(65_536);
    if (arena === null) throw new Error('no WebAssembly SIMD');
    arena.float32(4);
    const mark = arena.mark();
    const scratch = arena.float64(100);
    scratch?.fill(7);
    const before = arena.available;
    arena.release(mark);
    expect(arena.available).toBe(before + 800);
    const again = arena.float64(100);
    expect(again?.byteOffset).toBe(scratch?.byteOffset);
    expect(Array.from(again ?? []).every((v) => v === 0)).toBe(true);
  });

  it('refuses sizes past wasm32 memory, and the update allocator then uses the JS heap', () => {
    expect(KernelArena.create(MAX_ARENA_BYTES + 1)).toBeNull();
    const heap = updateAllocator(1100, 1_000_000, 0)(8);
    expect(KernelArena.of(heap)).toBeNull();
    const inArena = updateAllocator(3, 1000, 0)(1000);
    expect(KernelArena.of(inArena)).not.toBeNull();
  });
});
