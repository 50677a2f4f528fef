import { z } from 'zod';
import { TaskIdSchema } from './primitives.js';

/** What the device can offer right now; the coordinator selects only eligible devices. */
export const EligibilitySchema = z.object({
  charging: z.boolean(),
  unmeteredNetwork: z.boolean(),
  /** Free storage in bytes. */
  freeStorageBytes: z.number().int().nonnegative(),
  /** Coarse compute class; also picks the precision of adapter downloads. */
  computeClass: z.enum(['low', 'medium', 'high']),
});
export type Eligibility = z.infer<typeof EligibilitySchema>;

/** The most the device is willing to spend on one round. */
export const DeviceBudgetSchema = z.object({
  /** Wall-clock seconds of local training. */
  maxSeconds: z.number().positive(),
  /** Bytes it may download plus upload. */
  maxBytes: z.number().int().positive(),
});
export type DeviceBudget = z.infer<typeof DeviceBudgetSchema>;

/**
 * checkin — sent by an authenticated device that wants work for `taskId`.
 * Ack: `{ status: 'waiting' }` (the device may be chosen; a `round:plan` or `round:not-selected`
 * follows) or `{ status: 'retry', retryAfterMs, reason }` (pace steering: come back later).
 */
export const CheckInSchema = z.object({
  taskId: TaskIdSchema,
  eligibility: EligibilitySchema,
  budget: DeviceBudgetSchema,
  /** Adapter version the device currently serves (0 = none). */
  adapterVersion: z.number().int().nonnegative(),
});
export type CheckIn = z.infer<typeof CheckInSchema>;

export const CheckInResultSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('waiting') }),
  z.object({
    status: z.literal('retry'),
    /** Milliseconds to wait before checking in again (jittered). */
    retryAfterMs: z.number().int().nonnegative(),
    reason: z.enum([
      'not-eligible',
      'no-open-round',
      'round-full',
      'already-participated',
      'budget-too-small',
      /** The operator paused the task: check in again later. */
      'task-paused',
      /** The task runs no more rounds (stopped by the operator or the worker, archived, or maxRounds reached). */
      'task-stopped',
    ]),
  }),
]);
export type CheckInResult = z.infer<typeof CheckInResultSchema>;

/** round:not-selected — sent by the server to waiting devices that were not chosen. */
export const NotSelectedSchema = z.object({
  taskId: TaskIdSchema,
  retryAfterMs: z.number().int().nonnegative(),
});
export type NotSelected = z.infer<typeof NotSelectedSchema>;
