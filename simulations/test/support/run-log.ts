import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { verifyRoundLog } from '@flotilla/protocol';
import {
  LocalDirBlobStore,
  defaultRoundLogPath,
  loadOrCreateRoundLogSecret,
  openRoundLog,
  type OpenRoundLogOptions,
  type RoundLogWriter,
} from '@flotilla/coordinator/shared';
import { recomputeAggregateDigest } from '@flotilla/coordinator/worker';
import type { SimulationResult } from '../../src/runner/run-simulation.js';

/** Opens the signed round log of a coordinator on `stateDir`: its file mirror and pseudonym secret there. */
export async function openStateDirRoundLog(
  options: Omit<OpenRoundLogOptions, 'filePath' | 'pseudonymSecret'> & { stateDir: string },
): Promise<RoundLogWriter> {
  const { stateDir, ...rest } = options;
  return openRoundLog({
    ...rest,
    filePath: defaultRoundLogPath(stateDir),
    pseudonymSecret: await loadOrCreateRoundLogSecret(stateDir),
  });
}

/** A finished run's round log: its records, its blob store, and the auditor's verification. */
export async function readRunLog(result: Pick<SimulationResult, 'roundLogPath' | 'coordinatorKey'>): Promise<{
  records: unknown[];
  blobs: LocalDirBlobStore;
  /** Problems `verifyRoundLog` found, every retained aggregate recomputed from its deltas. */
  problems: unknown[];
}> {
  const records = readFileSync(result.roundLogPath, 'utf8')
    .trim()
    .split('\n')
    .map((line): unknown => JSON.parse(line));
  const blobs = new LocalDirBlobStore({ dir: join(dirname(dirname(result.roundLogPath)), 'blobs') });
  const report = await verifyRoundLog(records, {
    trustedKey: result.coordinatorKey,
    recompute: (record) => recomputeAggregateDigest(record.event, blobs),
  });
  return { records, blobs, problems: report.problems };
}
