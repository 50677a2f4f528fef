#!/usr/bin/env node
// Coordinator process entry (`flotilla-coordinator` of the built package; from the sources: `node
// --conditions=@flotilla/source --import tsx coordinator/src/server/main.ts`): flags
// [--port 8787] [--state-dir .flotilla] … or environment variables (see config.ts).
import { readCoordinatorConfig } from './config.js';
import { runCoordinator } from './run-coordinator.js';

const config = readCoordinatorConfig(process.argv.slice(2), process.env);
const running = await runCoordinator(config);
let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`coordinator: ${signal}, shutting down\n`);
  running.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGINT', () => shutdown('SIGINT'));
process.once('SIGTERM', () => shutdown('SIGTERM'));
