// The heavy parts of the coordinator that support helpers start, loaded on first use. Every test
// imports the one support index (./index.js); loading the server, the BullMQ worker and the
// aggregation job up front would cost each unit test that starts none of them about a second.
export const loadCoordinatorServer = () => import('../../src/server/coordinator.js');
export const loadAggregationWorker = () => import('../../src/worker/aggregation-worker.js');
export const loadAggregateJob = () => import('../../src/worker/job/process-aggregate-job.js');
