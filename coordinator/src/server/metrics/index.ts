export {
  FlotillaMetrics,
  QUEUE_STATES,
  type FlotillaMetricsOptions,
  type MetricsSources,
} from './flotilla-metrics.js';
export { handleMetricsRequest, type MetricsHandlerDeps } from './metrics-handler.js';
export {
  observeFleetChannel,
  observeRoundEvents,
  observeSockets,
  type ObservableSocket,
  type ObservableSocketServer,
} from './observers.js';
export { roundLogger, type RoundContext } from './round-logger.js';
export { RoundLogFollower, type ChainStatus, type RoundLogFollowerOptions } from './round-log-follower.js';
