import { StreamingFedAvg } from './streaming-fedavg.js';

export interface ThroughputOptions {
  /** Values per update. Default 1_048_576 (4 MiB of f32). */
  length?: number;
  /** Updates folded per measurement. Default 20. */
  updates?: number;
  /** Measurements per method; the best is reported. Default 3. */
  repeats?: number;
}

export interface ThroughputReport {
  /** GB/s (1e9 bytes) of f32 update bytes folded by `StreamingFedAvg` (SIMD if available). */
  fedAvgGBps: number;
  /** Same with the TS loop. */
  scalarGBps: number;
  /** GB/s of `Float32Array.prototype.set` copying the same bytes, measured side by side. */
  copyGBps: number;
  usesSimd: boolean;
  length: number;
  updates: number;
}

/**
 * Measures the FedAvg fold against a plain memory copy of the same bytes, interleaved in one run
 * so both see the same machine load. For benchmarks; tests must not assert on its numbers.
 */
export function measureFedAvgThroughput(options: ThroughputOptions = {}): ThroughputReport {
  const length = options.length ?? 1_048_576;
  const updates = options.updates ?? 20;
  const repeats = options.repeats ?? 3;
  const inputs = Array.from({ length: 4 }, (_, k) =>
    Float32Array.from({ length }, (_, i) => ((i * 7 + k) % 13) - 6),
  );
  const target = new Float32Array(length);
  const bytes = length * 4 * updates;
  const best = { simd: Infinity, scalar: Infinity, copy: Infinity };
  for (let r = 0; r < repeats; r++) {
    best.copy = Math.min(
      best.copy,
      time(() => {
        for (let u = 0; u < updates; u++) target.set(inputs[u % inputs.length] ?? target);
      }),
    );
    for (const kernel of ['auto', 'scalar'] as const) {
      const elapsed = time(() => {
        const mean = new StreamingFedAvg({ length, kernel });
        for (let u = 0; u < updates; u++) mean.add(inputs[u % inputs.length] ?? target, u + 1);
      });
      if (kernel === 'auto') best.simd = Math.min(best.simd, elapsed);
      else best.scalar = Math.min(best.scalar, elapsed);
    }
  }
  const gbps = (seconds: number): number => bytes / seconds / 1e9;
  return {
    fedAvgGBps: gbps(best.simd),
    scalarGBps: gbps(best.scalar),
    copyGBps: gbps(best.copy),
    usesSimd: new StreamingFedAvg({ length: 0 }).usesSimd,
    length,
    updates,
  };
}

function time(run: () => void): number {
  const start = performance.now();
  run();
  return (performance.now() - start) / 1000;
}
