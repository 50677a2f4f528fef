// Lint configuration. The `no-restricted-imports` blocks below enforce the import direction of
// DESIGN.md: protocol <- client, protocol <- coordinator, simulations may use all three, nothing
// imports simulations, and coordinator/server and coordinator/worker never import each other.
import tseslint from 'typescript-eslint';

const nodeOnly = ['node:*', 'fs', 'path', 'os', 'child_process', 'net', 'http', 'crypto'];
const serverSide = ['socket.io', 'socket.io-client', 'ioredis', 'bullmq', '@tensorflow/*'];

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      'dist-tools/**',
      '**/node_modules/**',
      '.flotilla/**',
      '**/*.js',
      '**/*.mjs',
      '**/*.cjs',
      'simulations/web/**',
    ],
  },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['protocol/**/*.ts'],
    ignores: ['protocol/src/node/**', 'protocol/test/**', 'protocol/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@flotilla/*'],
              message: 'protocol is the root of the import graph: it imports no other package.',
            },
            {
              group: [...nodeOnly, ...serverSide],
              message: 'protocol is isomorphic: node-only code goes in protocol/src/node.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['client/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@flotilla/coordinator*', '@flotilla/simulations*'],
              message: 'client imports only @flotilla/protocol.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['coordinator/src/server/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@flotilla/client*', '@flotilla/simulations*'],
              message: 'coordinator imports only @flotilla/protocol.',
            },
            {
              group: ['**/worker/**', '../worker', '../worker/*'],
              message: 'server/ and worker/ share only coordinator/src/shared.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['coordinator/src/worker/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@flotilla/client*', '@flotilla/simulations*'],
              message: 'coordinator imports only @flotilla/protocol.',
            },
            {
              group: ['**/server/**', '../server', '../server/*'],
              message: 'server/ and worker/ share only coordinator/src/shared.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['coordinator/src/shared/**/*.ts', 'coordinator/test/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@flotilla/client*', '@flotilla/simulations*'],
              message: 'coordinator imports only @flotilla/protocol.',
            },
          ],
        },
      ],
    },
  },
);
