import { z } from 'zod';

/**
 * How the defences treated one set of updates, against the ground truth of who attacked. An
 * update is "caught" when the drift audit flagged it (a warn or fail finding naming its device) or
 * the robust strategy excluded it (weight 0 in the aggregate, e.g. Krum, Multi-Krum, Bulyan).
 */
export const DetectionCountsSchema = z.object({
  /** Aggregated updates sent by attackers / by honest devices. */
  attackerUpdates: z.number().int().nonnegative(),
  honestUpdates: z.number().int().nonnegative(),
  /** Of those, flagged by the drift audit. */
  attackersFlagged: z.number().int().nonnegative(),
  honestFlagged: z.number().int().nonnegative(),
  /** Of those, given weight 0 by the strategy. */
  attackersExcluded: z.number().int().nonnegative(),
  honestExcluded: z.number().int().nonnegative(),
  /** Of those, flagged or excluded (each update counted once). */
  attackersCaught: z.number().int().nonnegative(),
  honestCaught: z.number().int().nonnegative(),
  /** Updates refused by the coordinator before aggregation (e.g. above the clip bound). */
  attackersRefused: z.number().int().nonnegative(),
  honestRefused: z.number().int().nonnegative(),
  /** attackersCaught / (attackersCaught + honestCaught); null when nothing was caught. */
  precision: z.number().min(0).max(1).nullable(),
  /** attackersCaught / attackerUpdates; null when no attacker update was aggregated. */
  recall: z.number().min(0).max(1).nullable(),
});
export type DetectionCounts = z.infer<typeof DetectionCountsSchema>;

/** One aggregated round of the round log. */
export const RoundDetectionSchema = DetectionCountsSchema.extend({
  /** Round number in the round log (`<taskId>:<n>`). */
  round: z.number().int().positive(),
  /** Pseudonyms of the attackers whose update was aggregated this round. */
  attackers: z.array(z.string()),
});
export type RoundDetection = z.infer<typeof RoundDetectionSchema>;

/** A run's attack and what the defences did about it (metrics.json `runs[].attack`). */
export const AttackGroundTruthSchema = z.object({
  /** Scenario attack name, e.g. 'sign-flip', 'backdoor'. */
  attack: z.string().min(1),
  /** The Byzantine devices: their ids and round-log pseudonyms. */
  attackers: z.array(z.object({ deviceId: z.string(), pseudonym: z.string() })),
  rounds: z.array(RoundDetectionSchema),
  total: DetectionCountsSchema,
});
export type AttackGroundTruth = z.infer<typeof AttackGroundTruthSchema>;
