import { execFileSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { reserveThreadYoungGeneration } from './thread-heap.js';

// A thread that makes short-lived garbage, as a math thread does (typed-array views of blocks),
// and reports how many times V8 scavenged its young generation meanwhile.
const GARBAGE_THREAD = `
const { parentPort } = require('node:worker_threads');
const { PerformanceObserver, constants } = require('node:perf_hooks');
let scavenges = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
}).observe({ entryTypes: ['gc'] });
const values = new Float32Array(1 << 20);
let views = [];
for (let i = 0; i < 300000; i++) {
  views.push(values.subarray(i, i + 16));
  if (views.length > 100) views = [];
}
setTimeout(() => parentPort.postMessage(scavenges), 100);
`;

function scavengesInThread(): Promise<number> {
  const worker = new Worker(GARBAGE_THREAD, { eval: true });
  return new Promise<number>((resolve, reject) => {
    worker.once('message', (count: number) => {
      resolve(count);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

describe('thread young generation', () => {
  it('lets threads started after the reservation hold their short-lived garbage with few scavenges', async () => {
    // The same thread in a process without the reservation (V8's default, a 1 MB start).
    const unreserved = Number(
      execFileSync(
        process.execPath,
        [
          '-e',
          `const { Worker } = require('node:worker_threads');
           const thread = new Worker(${JSON.stringify(GARBAGE_THREAD)}, { eval: true });
           thread.once('message', (n) => { console.log(n); void thread.terminate(); });`,
        ],
        { encoding: 'utf8', timeout: 60_000 },
      ).trim(),
    );
    reserveThreadYoungGeneration();
    // A smaller size later does not shrink it.
    reserveThreadYoungGeneration(1);
    const reserved = await scavengesInThread();
    expect(unreserved).toBeGreaterThan(6);
    expect(reserved).toBeLessThanOrEqual(3);
  });
});
