import { siblingModule } from '../../shared/ts-worker.js';
import { ThreadClient } from '../thread-client.js';
import type { ComputeRoundInput, ComputeRoundResult } from './compute-round.js';

/**
 * The compute thread's young generation, MB (V8 gives it 4 MB semi-spaces, 8 MB resident, where
 * Node's default lets it grow to 32 MB; it held 16 MB in the demo task). The updates and the aggregate live outside the JS heap (typed
 * arrays, the kernel's WebAssembly memory); what the young generation holds between collections
 * is short-lived garbage, which a smaller one frees sooner.
 */
export const COMPUTE_THREAD_YOUNG_GENERATION_MB = 8;

/** `computeRound` in a worker thread (thread-client.ts), so aggregation never blocks the event loop. */
export class ThreadedCompute {
  private readonly client = new ThreadClient<
    { input: Omit<ComputeRoundInput, 'rng'>; seed: string | null },
    ComputeRoundResult
  >(siblingModule('compute-thread', import.meta.url), 'compute', {
    maxYoungGenerationSizeMb: COMPUTE_THREAD_YOUNG_GENERATION_MB,
  });

  /**
   * Starts the thread now, so its module loading (about a second) happens while the worker is
   * idle rather than in the first round's critical path.
   */
  start(): void {
    this.client.start();
  }

  /** `seed` makes the DP noise reproducible; null draws it from the platform CSPRNG. */
  run(input: Omit<ComputeRoundInput, 'rng'>, seed: string | null): Promise<ComputeRoundResult> {
    return this.client.request({ input, seed });
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
