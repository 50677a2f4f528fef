import {
  DEFAULT_ORDERS,
  FlotillaError,
  at,
  epsilonFromRdp,
  type PrivacyBound,
  type RdpConversion,
} from '@flotilla/protocol';
import { z } from 'zod';
import { computeRdp } from './rdp.js';

/** One or more rounds of the sampled Gaussian mechanism with the same parameters. */
export interface RdpStep {
  /** Sampling rate q in [0, 1] (selected devices / population). */
  q: number;
  /** Noise multiplier z >= 0. */
  noiseMultiplier: number;
  /** Number of rounds with these parameters. Default 1. */
  steps?: number;
}

// JSON has no Infinity: an infinite RDP (z = 0, or α = ∞) is stored as the string "Infinity".
const RdpValueSchema = z.union([z.number().nonnegative(), z.literal('Infinity').transform(() => Infinity)]);

export const RdpAccountantStateSchema = z.object({
  version: z.literal(1),
  orders: z.array(z.union([z.number().gt(1), z.literal('Infinity').transform(() => Infinity)])).min(1),
  rdp: z.array(RdpValueSchema).min(1),
  /** What was spent, in order; consecutive identical (q, z) entries are merged. */
  history: z.array(
    z.object({
      q: z.number().min(0).max(1),
      noiseMultiplier: z.number().nonnegative(),
      steps: z.number().int().nonnegative(),
    }),
  ),
});
/** The persisted form of an {@link RdpAccountant} (`toJSON()` output, `fromJSON()` input). */
export type RdpAccountantState = z.input<typeof RdpAccountantStateSchema>;

const encodeNumber = (x: number): number | 'Infinity' => (x === Infinity ? 'Infinity' : x);

/**
 * Running RDP of everything released so far (composition adds RDP order by order). The worker
 * keeps one per task, persists it with `toJSON()` after every round and asks `wouldExceed` before
 * promoting a candidate.
 */
export class RdpAccountant {
  readonly orders: readonly number[];
  private readonly rdpTotal: number[];
  private readonly spent: Array<{ q: number; noiseMultiplier: number; steps: number }>;
  // Rounds usually repeat the same (q, z): keep the last per-step curve instead of recomputing it.
  private perStepCache: { q: number; noiseMultiplier: number; rdp: number[] } | null = null;

  /** @param options.orders Rényi orders to track. Default {@link DEFAULT_ORDERS}. */
  constructor(options: { orders?: readonly number[] } = {}) {
    this.orders = Object.freeze([...(options.orders ?? DEFAULT_ORDERS)]);
    if (this.orders.length === 0)
      throw new FlotillaError('BAD_REQUEST', 'the accountant needs at least one order');
    this.rdpTotal = this.orders.map(() => 0);
    this.spent = [];
  }

  /** The accumulated RDP at each of `orders` (a copy). */
  get rdp(): number[] {
    return [...this.rdpTotal];
  }

  /** Rounds accounted so far. */
  get totalSteps(): number {
    return this.spent.reduce((sum, entry) => sum + entry.steps, 0);
  }

  /** The (q, z, steps) entries accounted so far, oldest first (a copy). */
  get history(): Array<{ q: number; noiseMultiplier: number; steps: number }> {
    return this.spent.map((entry) => ({ ...entry }));
  }

  /** RDP added by `step`, one value per order. */
  private rdpOf(step: RdpStep): number[] {
    const steps = step.steps ?? 1;
    const cached = this.perStepCache;
    let perStep: number[];
    if (cached !== null && cached.q === step.q && cached.noiseMultiplier === step.noiseMultiplier)
      perStep = cached.rdp;
    else {
      perStep = computeRdp({
        q: step.q,
        noiseMultiplier: step.noiseMultiplier,
        steps: 1,
        orders: this.orders,
      });
      this.perStepCache = { q: step.q, noiseMultiplier: step.noiseMultiplier, rdp: perStep };
    }
    // computeRdp validated q and z; steps is checked here. 0 steps spend nothing (avoid 0 * ∞).
    if (!Number.isInteger(steps) || steps < 0)
      throw new FlotillaError('BAD_REQUEST', `steps must be an integer >= 0, got ${steps}`);
    return perStep.map((value) => (steps === 0 ? 0 : value * steps));
  }

  /** Accounts `steps` (default 1) more rounds. */
  step(step: RdpStep): this {
    const steps = step.steps ?? 1;
    this.rdpOf(step).forEach((value, k) => {
      this.rdpTotal[k] = at(this.rdpTotal, k) + value;
    });
    const last = this.spent.at(-1);
    if (last !== undefined && last.q === step.q && last.noiseMultiplier === step.noiseMultiplier)
      last.steps += steps;
    else this.spent.push({ q: step.q, noiseMultiplier: step.noiseMultiplier, steps });
    return this;
  }

  /** ε spent so far for `delta`, and the order that gives it. 0 before the first step. */
  getEpsilon(delta: number, conversion: RdpConversion = 'improved'): PrivacyBound {
    return epsilonFromRdp({ orders: this.orders, rdp: this.rdpTotal, delta, conversion });
  }

  /** ε that would be spent after `nextStep`, without accounting it. */
  epsilonAfter(nextStep: RdpStep, delta: number, conversion: RdpConversion = 'improved'): PrivacyBound {
    const added = this.rdpOf(nextStep);
    const rdp = this.rdpTotal.map((value, k) => value + at(added, k));
    return epsilonFromRdp({ orders: this.orders, rdp, delta, conversion });
  }

  /** True when accounting `nextStep` would take ε (for `delta`) past `budget`: promotion is refused. */
  wouldExceed(
    budget: number,
    delta: number,
    nextStep: RdpStep,
    conversion: RdpConversion = 'improved',
  ): boolean {
    return this.epsilonAfter(nextStep, delta, conversion).epsilon > budget;
  }

  /** A JSON-safe snapshot (∞ written as the string "Infinity"). */
  toJSON(): RdpAccountantState {
    return {
      version: 1,
      orders: this.orders.map(encodeNumber),
      rdp: this.rdpTotal.map(encodeNumber),
      history: this.history,
    };
  }

  /** Restores an accountant from `toJSON()` output (validated: only the worker writes it, so a corrupt state throws INTERNAL). */
  static fromJSON(state: unknown): RdpAccountant {
    const parsed = RdpAccountantStateSchema.safeParse(state);
    if (!parsed.success)
      throw new FlotillaError('INTERNAL', `invalid accountant state: ${parsed.error.message}`);
    const { orders, rdp, history } = parsed.data;
    if (orders.length !== rdp.length) {
      throw new FlotillaError(
        'INTERNAL',
        `accountant state has ${orders.length} orders but ${rdp.length} rdp values`,
      );
    }
    const accountant = new RdpAccountant({ orders });
    rdp.forEach((value, k) => {
      accountant.rdpTotal[k] = value;
    });
    accountant.spent.push(...history.map((entry) => ({ ...entry })));
    return accountant;
  }
}
