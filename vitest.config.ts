import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const packages = ['protocol', 'client', 'coordinator', 'simulations'];

// `@flotilla/*` imports resolve to the TypeScript sources through this export condition (see the
// packages' `exports`); without it they would resolve to the built dist/, which may be stale or
// absent. Worker threads get it from startTsWorker, child processes from their `--conditions`.
const SOURCE_CONDITION = '@flotilla/source';

export default defineConfig({
  resolve: { conditions: [SOURCE_CONDITION, 'module', 'browser', 'development|production'] },
  ssr: { resolve: { conditions: [SOURCE_CONDITION, 'module', 'node', 'development|production'] } },
  test: {
    // Node's own resolver in the test processes (and the worker threads they start) too.
    execArgv: [`--conditions=${SOURCE_CONDITION}`],
    globalSetup: [fileURLToPath(new URL('./test-support/global-setup.ts', import.meta.url))],
    projects: packages.map((name) => ({
      extends: true,
      test: {
        name,
        root: `./${name}`,
        include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
        // Hang detectors, not speed limits: the integration tests start processes and run whole
        // rounds, which take several times longer on a loaded 2-core machine (`npm test` must pass
        // beside two CPU-bound processes); a test's own waits are bounded by conditions inside it.
        testTimeout: 180_000,
        hookTimeout: 180_000,
      },
    })),
  },
});
