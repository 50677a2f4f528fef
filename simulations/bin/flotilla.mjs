#!/usr/bin/env node
// The `flotilla` command: runs the TypeScript CLI through tsx (no build step needed).
import { tsImport } from 'tsx/esm/api';

await tsImport('../src/cli/main.ts', import.meta.url);
