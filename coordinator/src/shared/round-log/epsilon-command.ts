import {
  RoundLogRecordSchema,
  isTreeHeadLine,
  dpTaskIds,
  privacyLedger,
  type LedgerInput,
  type LedgerRound,
  type PrivacyLedger,
} from '@flotilla/protocol';
import type { CommandResult } from './cli.js';
import { readRoundLogFile } from './file.js';

// `flotilla privacy epsilon --log <file> [--task <id>]`: ε recomputed from a round log alone, every
// charged round listed (promoted or rejected), and every disagreement between what the log records
// and what its own parameters give. The chain itself is `flotilla audit verify`'s job.

export interface EpsilonFromLogOptions {
  /** JSONL round log. */
  file: string;
  /** The task; may be omitted when the log holds exactly one DP task. */
  taskId?: string;
  /** Print the ledger as JSON. */
  json: boolean;
}

/** Against whom the ε holds (docs/privacy.md, "Against whom ε holds"). */
const GUARANTEE =
  'readers of the log, the audit API, the dashboard and the fleet: what they see of a DP task derives from the ' +
  'noised aggregates, public data and participation (updates are named by hiding commitments, per-update values withheld); ' +
  'not the operator, who sees raw updates';

const fmt = (x: number | null): string =>
  x === null ? '-' : Number.isNaN(x) ? 'n/a' : Number.isFinite(x) ? x.toPrecision(8) : '∞';

function describeReleases(row: LedgerRound): string {
  return row.releases
    .map((r) => `${r.query} (sensitivity ${fmt(r.sensitivity)}, noise std ${fmt(r.noiseStd)})`)
    .join(' + ');
}

function render(ledger: PrivacyLedger, unreadable: number): string {
  const lines: string[] = [];
  const last = ledger.rounds.at(-1);
  lines.push(
    `task ${ledger.taskId}: ε ${fmt(ledger.epsilon)} at δ ${ledger.delta ?? '-'} after ${ledger.rounds.length} ` +
      `charged round(s), recomputed from the log (it records ${fmt(ledger.recordedEpsilon)}` +
      `${ledger.epsilonBudget !== null ? `; budget ${fmt(ledger.epsilonBudget)}` : ''})`,
  );
  for (const row of ledger.rounds) {
    const sampled =
      row.selected !== null ? `, ${row.selected} selected of ${row.eligible ?? '?'} eligible` : '';
    lines.push(
      `  ${row.roundId} ${row.decision}${sampled}: ${describeReleases(row)} -> ε ${fmt(row.epsilon)}` +
        ` (recorded ${fmt(row.recordedEpsilon)})`,
    );
  }
  if (last !== undefined)
    lines.push(
      'accounting: RDP of the Gaussian mechanism, zero-out neighbours, no amplification by sampling ' +
        '(participants are named in the log); see docs/privacy.md',
      `holds against: ${GUARANTEE}`,
    );
  if (unreadable > 0) lines.push(`${unreadable} line(s) are not round-log records and were skipped`);
  if (ledger.problems.length === 0) lines.push('OK: every recorded ε is the one the log’s parameters give');
  else {
    lines.push(`FAIL: ${ledger.problems.length} problem(s)`);
    for (const p of ledger.problems) lines.push(`  record ${p.seq}: ${p.code}: ${p.message}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Exit 0 when every recorded ε matches the recomputation, 1 otherwise (or on an unreadable file). */
export async function epsilonFromLogCommand(options: EpsilonFromLogOptions): Promise<CommandResult> {
  let raw: unknown[];
  try {
    raw = (await readRoundLogFile(options.file)).records;
  } catch (error) {
    return {
      exitCode: 1,
      output: `cannot read ${options.file}: ${error instanceof Error ? error.message : String(error)}\n`,
    };
  }
  const records: LedgerInput[] = [];
  let unreadable = 0;
  // Tree heads authenticate the records (that is `audit verify`'s job); ε is in the records.
  for (const value of raw) {
    if (isTreeHeadLine(value)) continue;
    const parsed = RoundLogRecordSchema.safeParse(value);
    if (parsed.success) records.push(parsed.data);
    else unreadable++;
  }
  const tasks = dpTaskIds(records);
  const taskId = options.taskId ?? (tasks.length === 1 ? tasks[0] : undefined);
  if (taskId === undefined)
    return {
      exitCode: 1,
      output:
        tasks.length === 0
          ? `${options.file} holds no aggregation of a DP task\n`
          : `${options.file} holds several DP tasks (${tasks.join(', ')}): choose one with --task\n`,
    };
  if (!tasks.includes(taskId))
    return { exitCode: 1, output: `${options.file} holds no aggregation of a DP task ${taskId}\n` };
  const ledger = privacyLedger(records, taskId);
  const exitCode = ledger.problems.length === 0 && unreadable === 0 ? 0 : 1;
  if (options.json)
    return {
      exitCode,
      output: `${JSON.stringify({ ok: exitCode === 0, unreadable, holdsAgainst: GUARANTEE, ...ledger }, null, 2)}\n`,
    };
  return { exitCode, output: render(ledger, unreadable) };
}
