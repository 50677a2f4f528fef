export * from './keys.js';
export * from './blob-store/index.js';
export * from './queues.js';
export * from './round-outcomes.js';
export * from './task-stop.js';
export * from './task-control.js';
export * from './task-registry.js';
export * from './adapter-registry.js';
export * from './coordinator-key.js';
export { redisOptionsFromUrl } from './redis-connection.js';
export {
  startEmbeddedRedis,
  redisServerAvailable,
  type EmbeddedRedis,
  type EmbeddedRedisOptions,
} from './embedded-redis.js';
export { startTsWorker, siblingModule, SOURCE_CONDITION } from './ts-worker.js';
export {
  openRoundLog,
  defaultRoundLogPath,
  roundLogKeys,
  readRoundLog,
  readRoundLogEntries,
  readRoundLogLines,
  syncMirror,
  mirrorIdOf,
  exportRoundLog,
  readRoundLogFile,
  retainedDeltaDigests,
  pseudonymizeDevice,
  pseudonymSecretPath,
  loadOrCreatePseudonymSecret as loadOrCreateRoundLogSecret,
  auditVerifyCommand,
  auditShowCommand,
  auditExportCommand,
  auditMirrorsCommand,
  DEFAULT_KEEP_LINES,
  TREE_SEGMENT_NODES,
  migrateTreeToSegments,
  epsilonFromLogCommand,
  type EpsilonFromLogOptions,
  type OpenRoundLogOptions,
  type RoundLogWriter,
  type InclusionProofAnswer,
  type CommandResult,
} from './round-log/index.js';
export * from './hierarchical-flow.js';
export { strategyCombinationProblem, type LoraRuleName } from './strategy-rules.js';
