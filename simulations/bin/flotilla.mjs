#!/usr/bin/env node
// The `flotilla` command: runs the TypeScript CLI through tsx (no build step needed). The
// `@flotilla/source` export condition makes `@flotilla/*` imports resolve to the packages'
// TypeScript sources rather than their built dist/ (worker threads get it from startTsWorker).
import { register } from 'node:module';
import { tsImport } from 'tsx/esm/api';

if (!process.execArgv.includes('--conditions=@flotilla/source')) {
  register(
    'data:text/javascript,export function resolve(specifier, context, next) {' +
      ' return next(specifier, { ...context, conditions: [...context.conditions, "@flotilla/source"] }); }',
  );
}
await tsImport('../src/cli/main.ts', import.meta.url);
