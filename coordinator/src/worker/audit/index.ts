/**
 * The worker's drift audit: norm statistics and MAD outliers, cosine screening, per-module drift
 * of the adapter from the base, the holdout comparison, and the round decision with its reasons.
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
export {
  l2Norm,
  cosineSimilarity,
  leaveOneOutCosine,
  leaveOneOutCosines,
  updateSimilarities,
  weightedTotal,
  type TensorList,
  type UpdateSimilarity,
} from './cosine.js';
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
  type AuditRoundInput,
  type AuditResult,
  type AuditSummary,
  type UpdateFinding,
} from './audit-round.js';
