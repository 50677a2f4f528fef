export interface ValidationGateInput {
  /** Holdout loss of the adapter the round started from. */
  lossBefore: number;
  /** Holdout loss after local training. */
  lossAfter: number;
  /** Largest relative loss increase accepted (0.05 = 5%); null: no gate, every update passes. */
  tolerance: number | null;
}

export interface ValidationGateResult {
  pass: boolean;
  reason: string;
}

/**
 * The device-side check that an update does not make the local holdout worse beyond a
 * tolerance: pass when lossAfter ≤ lossBefore·(1 + tolerance). A non-finite loss never passes.
 * A null tolerance is a task without the gate (plain FedAvg): every update passes.
 */
export function validationGate(input: ValidationGateInput): ValidationGateResult {
  const { lossBefore, lossAfter, tolerance } = input;
  if (tolerance === null)
    return { pass: true, reason: `no validation gate (holdout loss ${lossBefore} -> ${lossAfter})` };
  if (!Number.isFinite(lossBefore) || !Number.isFinite(lossAfter)) {
    return { pass: false, reason: `holdout loss is not finite (before ${lossBefore}, after ${lossAfter})` };
  }
  if (!(tolerance >= 0))
    return { pass: false, reason: `tolerance ${tolerance} is not a non-negative number` };
  const limit = lossBefore * (1 + tolerance);
  if (lossAfter <= limit) {
    return {
      pass: true,
      reason: `holdout loss ${lossAfter.toFixed(6)} ≤ ${limit.toFixed(6)} (before ${lossBefore.toFixed(6)}, tolerance ${tolerance})`,
    };
  }
  return {
    pass: false,
    reason: `holdout loss rose from ${lossBefore.toFixed(6)} to ${lossAfter.toFixed(6)}, above the limit ${limit.toFixed(6)} (tolerance ${tolerance})`,
  };
}
