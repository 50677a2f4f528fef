import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const packages = ['protocol', 'client', 'coordinator', 'simulations'];

export default defineConfig({
  test: {
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
