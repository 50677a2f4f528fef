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
});
