import { join } from 'node:path';
import { LocalDirBlobStore, auditVerifyCommand } from '@flotilla/coordinator/shared';
import { recomputeAggregateDigest } from '@flotilla/coordinator/worker';
import type { SimulationResult } from './run-simulation.js';

/**
 * Verifies a run's round log as an auditor would: against the run's coordinator key, recomputing
 * every retained aggregate from the deltas in `<stateDir>/blobs`.
 */
export async function verifyRunLog(
  result: Pick<SimulationResult, 'roundLogPath' | 'coordinatorKey'>,
  stateDir: string,
): Promise<{ ok: boolean; output: string }> {
  const blobs = new LocalDirBlobStore({ dir: join(stateDir, 'blobs') });
  const verify = await auditVerifyCommand({
    file: result.roundLogPath,
    json: false,
    trustedKey: result.coordinatorKey,
    recompute: (record) => recomputeAggregateDigest(record.event, blobs),
  });
  return { ok: verify.exitCode === 0, output: verify.output.trim() };
}
