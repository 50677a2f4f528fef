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
        testTimeout: 60_000,
        hookTimeout: 60_000,
      },
    })),
  },
});
