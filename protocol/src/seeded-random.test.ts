import { describe, expect, it } from 'vitest';
import { SeededRandom, fnv1a32 } from './seeded-random.js';
import { initialAdapterTensors } from './adapter-init.js';

describe('SeededRandom', () => {
  it('is reproducible and spreads uniformly', () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom(42);
    const draws = Array.from({ length: 10_000 }, () => a.nextFloat());
    expect(draws.slice(0, 5)).toEqual(Array.from({ length: 5 }, () => b.nextFloat()));
    const mean = draws.reduce((s, x) => s + x, 0) / draws.length;
    const variance = draws.reduce((s, x) => s + (x - mean) ** 2, 0) / draws.length;
    // U(0,1): mean 1/2, variance 1/12; 10k draws give a standard error of ~0.003 on the mean.
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.015);
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.005);
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(1);
  });

  it('hashes with FNV-1a 32 (published test values)', () => {
    // Reference values from the FNV authors' test suite: "" -> 0x811c9dc5, "a" -> 0xe40c292c, "foobar" -> 0xbf9cf968.
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });
});

describe('initialAdapterTensors', () => {
  const spec = { mode: 'lora' as const, targetModules: ['hidden'], r: 4, alpha: 8, seed: 7 };
  it('draws A within the kaiming bound and zeroes B, deterministically', () => {
    const first = initialAdapterTensors(spec, { hidden: { in: 784, out: 128 } });
    const again = initialAdapterTensors(spec, { hidden: { in: 784, out: 128 } });
    const a = first.get('base_model.model.hidden.lora_A.weight');
    const b = first.get('base_model.model.hidden.lora_B.weight');
    expect(a?.shape).toEqual([4, 784]);
    expect(b?.shape).toEqual([128, 4]);
    expect(b?.values.every((v) => v === 0)).toBe(true);
    const bound = 1 / Math.sqrt(784);
    expect(a?.values.every((v) => Math.abs(v) <= bound)).toBe(true);
    expect(a?.values).toEqual(again.get('base_model.model.hidden.lora_A.weight')?.values);
  });

  it('uses a zero bias offset in bias mode', () => {
    const t = initialAdapterTensors({ ...spec, mode: 'bias' }, { hidden: { in: 784, out: 128 } });
    expect([...t.keys()]).toEqual(['base_model.model.hidden.bias']);
  });

  it('uses zero kernel [out, in] and bias [out] offsets in full mode, whatever r is', () => {
    const t = initialAdapterTensors({ ...spec, mode: 'full', r: 999 }, { hidden: { in: 3, out: 2 } });
    expect([...t.keys()].sort()).toEqual(['base_model.model.hidden.bias', 'base_model.model.hidden.weight']);
    expect(t.get('base_model.model.hidden.weight')).toEqual({ shape: [2, 3], values: new Float32Array(6) });
    expect(t.get('base_model.model.hidden.bias')).toEqual({ shape: [2], values: new Float32Array(2) });
  });
});
