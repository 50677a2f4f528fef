import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startTsWorker } from './ts-worker.js';

// The bench's processes run with --expose-gc, a flag Node refuses in a Worker's execArgv: the
// aggregation worker's compute thread failed to start there (ERR_WORKER_INVALID_EXEC_ARGV).
const dir = mkdtempSync(join(tmpdir(), 'flotilla-ts-worker-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('startTsWorker', () => {
  it('starts a thread from a parent running with --expose-gc, and passes its data', async () => {
    const entry = join(dir, 'echo.mjs');
    writeFileSync(
      entry,
      "import { parentPort, workerData } from 'node:worker_threads';\nparentPort.postMessage(workerData.data);\n",
    );
    const worker = startTsWorker(entry, { hello: 'thread' }, { execArgv: ['--expose-gc'] });
    const message = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(message).toEqual({ hello: 'thread' });
  });

  // The device hosts and the aggregation worker's compute thread start with a small young
  // generation (HOST_YOUNG_GENERATION_MB, COMPUTE_THREAD_YOUNG_GENERATION_MB): the limit must reach
  // the thread through startTsWorker's options.
  it('starts a thread with the resource limits it is given (a capped young generation)', async () => {
    const entry = join(dir, 'churn.mjs');
    writeFileSync(
      entry,
      [
        "import v8 from 'node:v8';",
        "import { parentPort } from 'node:worker_threads';",
        // Short-lived objects with a rolling window of live ones: the young generation grows to its cap.
        'const live = new Array(200_000);',
        'for (let i = 0; i < 3_000_000; i += 1) live[i % live.length] = { i, pair: [i, i + 1] };',
        "const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');",
        'parentPort.postMessage(space.space_size);',
      ].join('\n'),
    );
    const newSpaceMb = async (options: Parameters<typeof startTsWorker>[2]) => {
      const worker = startTsWorker(entry, null, options);
      const bytes = await new Promise<number>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      await worker.terminate();
      return bytes / 2 ** 20;
    };
    // Node's default lets the same churn take 32 MB (two 16 MB semi-spaces).
    expect(await newSpaceMb({})).toBeGreaterThan(8);
    expect(await newSpaceMb({ resourceLimits: { maxYoungGenerationSizeMb: 8 } })).toBeLessThanOrEqual(8);
  });
});
