/**
 * The worker's drift audit: per-update screening against the round's robust reference with
 * thresholds from the round's own spread, per-module drift of the adapter from the base, the
 * holdout comparison and its noise test, and the round decision with its reasons.
 * Pure functions on numbers and Float32Arrays; the tfjs evaluation happens in the worker.
 */
export {
  median,
  summarizeNorms,
  modifiedZScores,
  madOutliers,
  type NormSummary,
  type ModifiedZOptions,
  type MadOutlierOptions,
} from './norm-stats.js';
export { l2Norm, cosineSimilarity, nearestDistances, type TensorList } from './cosine.js';
export { coordinateMedian, peerStats, updateStats, type PeerStats, type UpdateStats } from './reference.js';
export {
  screenUpdates,
  distanceToReference,
  isFlagged,
  normScale,
  type NormScale,
  RELATIVE_SPREAD_FLOOR,
  CENTRAL_SPREAD_FLOOR,
  centralSpreadFloor,
  COSINE_SPREAD_FLOOR,
  type UpdateFinding,
} from './update-screen.js';
export { holdoutImprovement, binomialHalfUpperTail, type HoldoutImprovement } from './holdout-improvement.js';
export {
  loraModuleDrift,
  biasModuleDrift,
  fullModuleDrift,
  type ModuleDrift,
  type LoraDriftInput,
  type BiasDriftInput,
  type FullDriftInput,
} from './module-drift.js';
export {
  compareOnHoldout,
  type HoldoutMetrics,
  type HoldoutComparison,
  type HoldoutComparisonOptions,
} from './holdout.js';
export {
  auditRound,
  screenRoundUpdates,
  type ScreenInput,
  type AuditRoundInput,
  type AuditResult,
  type AuditSummary,
  type AuditCheck,
  type TrustRegionScaling,
} from './audit-round.js';
