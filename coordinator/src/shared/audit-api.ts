import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import {
  FlotillaError,
  firstTreeHeadSigner,
  isTreeHeadLine,
  signedPrefix,
  summarizeRoundLog,
  verifyRoundLog,
  type RecomputeAggregate,
  type TreeHeadLine,
} from '@flotilla/protocol';
import { readRoundLog, readRoundLogEntries } from './round-log/stream.js';

// Read-only HTTP API for governance auditors, mounted by the coordinator server:
//   GET /api/audit/records?from=<seq>&limit=<n>  lines (records and tree heads) in log order, `next` to page on
//   GET /api/audit/verify                        verifyRoundLog up to the last signed tree head, and that head
//   GET /api/audit/rounds/:n                     summary of round number n (every task)
// Bearer auditor token; anything but GET is 405 (the log is append-only, and not from here).

export interface AuditApiDeps {
  redis: Redis;
  /** Redis key prefix; default in Flotilla `flotilla`. */
  prefix: string;
  /** Accepted auditor bearer tokens (compared in constant time). */
  auditorTokens: readonly string[];
  /** The coordinator's first round-log key (base64); default: the key of the first tree head. */
  trustedKey?: string;
  /** Recomputes retained aggregates during /verify. */
  recompute?: RecomputeAggregate;
  /** This process's round-log mirror: lines trimmed from the Redis stream are read from it. */
  mirrorPath?: string;
}

const PREFIX = '/api/audit/';
/** Records per page: default 100, at most 1000. */
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(JSON.stringify(body));
}

function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  send(res, status, { error: { code, message } }, headers);
}

const digestOf = (text: string) => createHash('sha256').update(text, 'utf8').digest();

function authorized(req: IncomingMessage, tokens: readonly string[]): boolean {
  const header = req.headers.authorization;
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return false;
  const presented = digestOf(header.slice('Bearer '.length).trim());
  // Hashing first gives equal-length buffers, so the comparison time does not depend on the token.
  let match = false;
  for (const token of tokens)
    if (token.length > 0 && timingSafeEqual(presented, digestOf(token))) match = true;
  return match;
}

function intParam(value: string | null, fallback: number): number | null {
  if (value === null || value === '') return fallback;
  return /^\d{1,12}$/.test(value) ? Number(value) : null;
}

/** Handles `/api/audit/...`; returns false (touching nothing) for any other path. */
export async function handleAuditRequest(
  req: IncomingMessage,
  res: ServerResponse,
  deps: AuditApiDeps,
): Promise<boolean> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (!url.pathname.startsWith(PREFIX)) return false;
  if (req.method !== 'GET') {
    sendError(res, 405, 'FORBIDDEN', 'the audit API is read-only: only GET is allowed', { allow: 'GET' });
    return true;
  }
  if (!authorized(req, deps.auditorTokens)) {
    sendError(res, 401, 'UNAUTHORIZED', 'an auditor bearer token is required', {
      'www-authenticate': 'Bearer',
    });
    return true;
  }
  try {
    await route(url, res, deps);
  } catch (error) {
    // Lines trimmed from Redis that this process's mirror cannot supply (410), or a mirror that
    // disagrees with the stream (500): the auditor is told so and where the lines are.
    if (error instanceof FlotillaError && error.code === 'NOT_FOUND')
      sendError(res, 410, error.code, error.message);
    else if (error instanceof FlotillaError && error.code === 'CORRUPT_FILE')
      sendError(res, 500, error.code, error.message);
    else sendError(res, 500, 'INTERNAL', 'internal error');
  }
  return true;
}

async function route(url: URL, res: ServerResponse, deps: AuditApiDeps): Promise<void> {
  const path = url.pathname.slice(PREFIX.length);
  const mirror = deps.mirrorPath === undefined ? {} : { mirrorPath: deps.mirrorPath };
  if (path === 'records') {
    const from = intParam(url.searchParams.get('from'), 0);
    const limit = intParam(url.searchParams.get('limit'), DEFAULT_LIMIT);
    if (from === null || limit === null || limit < 1 || limit > MAX_LIMIT) {
      sendError(res, 400, 'BAD_REQUEST', `from must be a seq and limit 1-${MAX_LIMIT}`);
      return;
    }
    const records = await readRoundLogEntries(deps.redis, deps.prefix, { from, limit: limit + 1, ...mirror });
    const page = records.slice(0, limit);
    send(res, 200, { records: page, next: records.length > limit ? (records[limit]?.seq ?? null) : null });
    return;
  }
  if (path === 'verify') {
    // Records appended since the last tree head are not signed yet: verify what is.
    const lines = await readRoundLogEntries(deps.redis, deps.prefix, mirror);
    const signed = signedPrefix(lines);
    const trustedKey = deps.trustedKey ?? firstTreeHeadSigner(signed) ?? '';
    const result = await verifyRoundLog(signed, {
      trustedKey,
      ...(deps.recompute ? { recompute: deps.recompute } : {}),
    });
    const last = signed.at(-1);
    const head = last && isTreeHeadLine(last) ? (last as TreeHeadLine) : null;
    send(res, 200, {
      ...result,
      trustedKey,
      trustedKeySource: deps.trustedKey ? 'configured' : 'first-record',
      head: head ? { seq: head.seq, treeHead: head.treeHead, signature: head.signature } : null,
      unsigned: lines.length - signed.length,
    });
    return;
  }
  const round = /^rounds\/(\d{1,12})$/.exec(path);
  if (round?.[1] !== undefined) {
    const n = Number(round[1]);
    const summary = summarizeRoundLog(await readRoundLog(deps.redis, deps.prefix, mirror), { round: n });
    if (summary.rounds.length === 0) {
      sendError(res, 404, 'NOT_FOUND', `no round number ${n} in the log`);
      return;
    }
    send(res, 200, summary);
    return;
  }
  sendError(res, 404, 'NOT_FOUND', `no audit resource ${url.pathname}`);
}
