// What the per-update screen reads besides the round's updates: public facts of earlier rounds
// (the last promoted round's norm scale, the last promoted step). Read the same way whether the
// screen runs before the aggregate (flag-exclusion.ts) or in the audit after it (finish-round.ts).
import type { AuditRoundInput, TensorList } from '../audit/index.js';
import type { TensorLayout } from '../strategies/flatten.js';
import { readNormHistory } from './norm-history.js';
import { readPromotedStep, stepInLayout } from './promoted-step.js';
import type { RoundContext } from './round-context.js';

/** The round's updates as the screen takes them: flattened, with their common layout. */
export interface FlatUpdates {
  updates: TensorList[];
  layout?: TensorLayout;
}

/**
 * The screen's references from earlier rounds: none in a DP task, where only the noised
 * aggregate may count; the last promoted step only for a round screened from its updates.
 */
export async function screenContext(
  ctx: RoundContext,
  perUpdate: FlatUpdates | { stats: unknown } | undefined,
): Promise<Pick<AuditRoundInput, 'normHistory' | 'previousStep'>> {
  if (ctx.task.policy.dp) return {};
  const normHistory = await readNormHistory(ctx.deps.redis, ctx.deps.prefix, ctx.job);
  if (perUpdate === undefined || !('updates' in perUpdate) || !perUpdate.layout) return { normHistory };
  const step = await readPromotedStep(ctx.deps, ctx.job);
  return step === null
    ? { normHistory }
    : { normHistory, previousStep: [stepInLayout(step, perUpdate.layout)] };
}
