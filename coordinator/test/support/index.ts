// The coordinator tests' support, one import for every test of this package (and the
// simulations' tests that drive a coordinator): `import { … } from './support/index.js'`.
// Each piece keeps its own file with one job; this file only lists them.

// In-process coordinator, test task and protocol-level devices.
export * from './test-coordinator.js';
export * from './test-task.js';
export * from './test-device.js';
export * from './device-protocol.js';
export * from './update-metadata.js';
export * from './fleet.js';
export * from './operator-api.js';
export * from './wait-for.js';
export * from './test-redis.js';

// Coordinator and worker child processes, and clusters of them.
export * from './child-output.js';
export * from './child-coordinator.js';
export * from './child-worker.js';
export * from './child-fleet.js';
export * from './process-cluster.js';
export * from './failover-device.js';
export * from './switch-proxy.js';

// The aggregation worker in-process, and its fixtures.
export * from './worker-fixtures.js';
export * from './module-d-task.js';

// The signed round log.
export * from './round-log-worker.js';
export * from './round-log-reads.js';
export * from './round-log-events.js';
export * from './unsigned-tail.js';
export * from './round-log-tree.js';

// Malformed and hostile traffic.
export * from './abuse.js';
export * from './engine-polling.js';
