// The simulations tests' support, one import for every test of this package:
// `import { … } from './support/index.js'`. It includes the coordinator tests' support (an
// in-process coordinator, child processes, protocol-level devices), which these tests drive too.
// Each piece keeps its own file with one job; this file only lists them.
export * from '../../../coordinator/test/support/index.js';

// Real devices and a coordinator for them.
export * from './chaos-fleet.js';
export * from './device-coordinator.js';
export * from './ffa-fleet.js';
export * from './test-simulation.js';

// The command line, child processes and scratch installs.
export * from './flotilla-cli.js';
export * from './child-process.js';
export * from './scratch-packages.js';
export * from './doc-commands.js';

// Round logs and test design.
export * from './run-log.js';
export * from './covering-array.js';
