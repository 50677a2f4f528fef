export { createCoordinator, type Coordinator, type CoordinatorOptions } from './coordinator.js';
export { CoordinatorConfigSchema, readCoordinatorConfig, type CoordinatorConfig } from './config.js';
export { runCoordinator, type RunningCoordinator, type RunCoordinatorExtras } from './run-coordinator.js';
export {
  DeviceRegistry,
  DeviceRecordSchema,
  type DeviceRecord,
  type DeviceRegistryOptions,
} from './device-registry.js';
export { RoundStore, RoundRecordSchema, type RoundRecord } from './round-store.js';
export {
  ROUND_STATES,
  ROUND_TRANSITIONS,
  TERMINAL_STATES,
  type RoundState,
  type NextState,
  type SourceState,
} from './round-machine.js';
export { AcceptedUpdateSchema, type AcceptedUpdate } from './accepted-update.js';
export { validateDeltaBlob, int8ScaleKey, NORM_TOLERANCE } from './update-validator.js';
export {
  loggingRoundEvents,
  roundLogEvents,
  type RoundEvents,
  type RoundEnd,
  type CoordinatorRoundEvent,
} from './round-events.js';
export { DEFAULT_RATE_LIMIT, type RateLimitOptions } from './rate-limiter.js';
export type { SocketStats } from './socket-server.js';
export { buildAggregateJob, buildRoundPlan, jitter } from './round-plan-builder.js';
export type { FleetChannel, RoundDriverLease } from './round-manager.js';
export {
  RoundLease,
  DriverNudgeSchema,
  DEFAULT_LEASE_TTL_MS,
  type DriverNudge,
  type RoundLeaseOptions,
} from './round-lease.js';
export { FleetPresence, DEFAULT_PRESENCE_TTL_MS, type FleetPresenceOptions } from './presence.js';
export type { RoundFence } from './round-store.js';
export { registerTask } from './register-task.js';
export { RoundLogFollower, type ChainStatus } from './metrics/round-log-follower.js';
