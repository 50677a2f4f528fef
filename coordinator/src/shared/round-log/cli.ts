import type { Redis } from 'ioredis';
import {
  firstTreeHeadSigner,
  renderRoundLogSummary,
  summarizeRoundLog,
  verifyRoundLog,
  type RecomputeAggregate,
  type RoundLogProblem,
} from '@flotilla/protocol';
import { exportRoundLog, readRoundLogFile, type RoundLogFileContents } from './file.js';
import { roundLogKeys } from './keys.js';

// The `flotilla audit verify|show|export` commands as functions: the CLI prints `output` and
// exits with `exitCode`. They never throw for a bad or missing file: an auditor gets a verdict.

export interface CommandResult {
  exitCode: number;
  output: string;
}

export interface AuditVerifyOptions {
  /** JSONL round log. */
  file: string;
  /** Print `{ ok, records, firstBad, problems, trustedKey, trustedKeySource, recomputed }` as JSON. */
  json: boolean;
  /** The coordinator's first public key (base64), pinned by the auditor; default the first tree head's signer. */
  trustedKey?: string;
  /** A signed tree head obtained independently, to detect records removed from the end or a fork. */
  expectedHead?: { treeSize: number; rootHash: string };
  /** Recomputes retained aggregates (wired to the strategies by the CLI). */
  recompute?: RecomputeAggregate;
}

const MAX_LISTED = 20;

async function load(file: string): Promise<RoundLogFileContents | string> {
  try {
    return await readRoundLogFile(file);
  } catch (error) {
    return `cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`;
  }
}

export async function auditVerifyCommand(options: AuditVerifyOptions): Promise<CommandResult> {
  const contents = await load(options.file);
  if (typeof contents === 'string') {
    const problems: RoundLogProblem[] = [{ seq: null, code: 'PARSE', message: contents }];
    return report(
      options,
      { ok: false, records: 0, firstBad: null, problems, recomputed: 0 },
      null,
      'none',
      [],
    );
  }
  const { records, corruptLines, lineOf } = contents;
  const pinned = options.trustedKey;
  const trustedKey = pinned ?? firstTreeHeadSigner(records) ?? '';
  const result = await verifyRoundLog(records, {
    trustedKey,
    ...(options.recompute ? { recompute: options.recompute } : {}),
    ...(options.expectedHead ? { expectedHead: options.expectedHead } : {}),
  });
  // A corrupt line is a PARSE problem naming the line, rather than a schema error about `null`.
  const corruptAt = new Set(corruptLines.map((c) => c.position));
  const problems: RoundLogProblem[] = [
    ...corruptLines.map((c) => ({
      seq: c.position,
      code: 'PARSE' as const,
      message: `line ${c.line} is not valid JSON: ${c.message}`,
    })),
    ...result.problems.filter((p) => !(p.code === 'SCHEMA' && p.seq !== null && corruptAt.has(p.seq))),
  ].sort((a, b) => (a.seq ?? -1) - (b.seq ?? -1));
  const verdict = { ...result, problems, ok: problems.length === 0 };
  return report(options, verdict, trustedKey, pinned ? 'pinned' : 'first-record', lineOf);
}

function report(
  options: AuditVerifyOptions,
  result: {
    ok: boolean;
    records: number;
    firstBad: number | null;
    problems: RoundLogProblem[];
    recomputed: number;
  },
  trustedKey: string | null,
  trustedKeySource: 'pinned' | 'first-record' | 'none',
  lineOf: number[],
): CommandResult {
  const exitCode = result.ok ? 0 : 1;
  if (options.json) {
    const { ok, records, firstBad, problems, recomputed } = result;
    return {
      exitCode,
      output: `${JSON.stringify({ ok, records, firstBad, problems, trustedKey, trustedKeySource, recomputed }, null, 2)}\n`,
    };
  }
  const lines: string[] = [];
  const keyNote =
    trustedKeySource === 'first-record'
      ? `trusted key ${trustedKey ?? ''} taken from the first tree head (not pinned: pass --key <coordinator public key> to pin it)`
      : trustedKeySource === 'pinned'
        ? `trusted key ${trustedKey ?? ''} (pinned)`
        : 'no trusted key';
  const where = (seq: number | null) =>
    seq === null ? 'log' : `position ${seq}${lineOf[seq] !== undefined ? ` (line ${lineOf[seq]})` : ''}`;
  if (result.ok) {
    lines.push(
      `PASS: ${result.records} lines verified: tree head signatures, roots and consistency, sequence, time and round rules`,
    );
    if (result.recomputed > 0)
      lines.push(`${result.recomputed} aggregates recomputed from retained deltas and matched`);
  } else {
    const first = result.problems[0];
    lines.push(
      `FAIL: first bad ${where(result.firstBad ?? first?.seq ?? null)}: ${first?.code ?? ''}: ${first?.message ?? ''}`,
    );
    for (const problem of result.problems.slice(1, MAX_LISTED))
      lines.push(`  ${where(problem.seq)}: ${problem.code}: ${problem.message}`);
    if (result.problems.length > MAX_LISTED)
      lines.push(`  … and ${result.problems.length - MAX_LISTED} more (use --json)`);
  }
  lines.push(keyNote);
  return { exitCode, output: `${lines.join('\n')}\n` };
}

export interface AuditShowOptions {
  file: string;
  /** Only this round number; default all. */
  round?: number;
  json: boolean;
}

export async function auditShowCommand(options: AuditShowOptions): Promise<CommandResult> {
  const contents = await load(options.file);
  if (typeof contents === 'string') return { exitCode: 1, output: `${contents}\n` };
  const summary = summarizeRoundLog(
    contents.records,
    options.round === undefined ? {} : { round: options.round },
  );
  if (options.json) return { exitCode: 0, output: `${JSON.stringify(summary, null, 2)}\n` };
  return { exitCode: 0, output: renderRoundLogSummary(summary) };
}

export interface AuditExportOptions {
  redis: Redis;
  /** Redis key prefix; default in Flotilla `flotilla`. */
  prefix: string;
  toFile: string;
  /** A mirror of this log (e.g. `.flotilla/audit/round-log.jsonl`): the lines trimmed from Redis are taken from it. */
  mirrorPath?: string;
}

/** Redis key prefixes that hold a round log (`<prefix>:roundlog:stream`), at most 20. */
async function roundLogPrefixes(redis: Redis): Promise<string[]> {
  const found = new Set<string>();
  const suffix = ':roundlog:stream';
  let cursor = '0';
  // Bounded: a few thousand keys per call, at most 50 calls.
  for (let calls = 0; calls < 50 && found.size < 20; calls++) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `*${suffix}`, 'COUNT', 2000);
    for (const key of keys) found.add(key.slice(0, -suffix.length));
    cursor = next;
    if (cursor === '0') break;
  }
  return [...found].sort();
}

/**
 * Writes the round log under `prefix` to a JSONL file. A prefix with no round log is a failure
 * (exit 1) that names the prefixes Redis does hold a log under: an empty export is almost always
 * the wrong prefix, never something to hand an auditor.
 */
export async function auditExportCommand(options: AuditExportOptions): Promise<CommandResult> {
  try {
    if ((await options.redis.exists(roundLogKeys(options.prefix).stream)) === 0) {
      const prefixes = await roundLogPrefixes(options.redis);
      return {
        exitCode: 1,
        output:
          `no round log under prefix "${options.prefix}" in this Redis; ` +
          (prefixes.length > 0
            ? `round logs exist under --prefix ${prefixes.join(', ')}\n`
            : 'it holds no round log under any prefix\n'),
      };
    }
    const count = await exportRoundLog(
      options.redis,
      options.prefix,
      options.toFile,
      options.mirrorPath === undefined ? {} : { mirrorPath: options.mirrorPath },
    );
    return {
      exitCode: 0,
      output: `exported ${count} round-log lines (records and tree heads) to ${options.toFile}\n`,
    };
  } catch (error) {
    return {
      exitCode: 1,
      output: `export failed: ${error instanceof Error ? error.message : String(error)}\n`,
    };
  }
}
