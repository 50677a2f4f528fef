// Small pieces every HTTP route of the coordinator shares: JSON answers, the error-code-to-status
// map, the bearer token, and an upload body with an idle timer.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { toWireError, type ErrorCode } from '@flotilla/protocol';

/**
 * HTTP status of every error code, complete so that a new code does not compile until it has one.
 * 409 Conflict: the request is well formed but the coordinator's state refuses it (a round, a
 * key, a budget, an update's content).
 */
const STATUS = {
  BAD_REQUEST: 400,
  PAYLOAD_TOO_LARGE: 413,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  VERSION_MISMATCH: 409,
  UNKNOWN_DEVICE: 404,
  REVOKED_DEVICE: 409,
  KEY_IN_USE: 409,
  BAD_SIGNATURE: 409,
  RATE_LIMITED: 429,
  NO_ACTIVE_ROUND: 409,
  NOT_SELECTED: 403,
  STALE_ROUND: 409,
  NONCE_MISMATCH: 409,
  ROUND_CLOSED: 409,
  DUPLICATE_UPDATE: 409,
  BLOB_MISSING: 404,
  DIGEST_MISMATCH: 400,
  BLOB_TOO_LARGE: 413,
  QUOTA_EXCEEDED: 429,
  CORRUPT_FILE: 400,
  SHAPE_MISMATCH: 409,
  MODULE_NOT_ALLOWED: 409,
  NON_FINITE: 409,
  NORM_EXCEEDED: 409,
  EXAMPLES_EXCEEDED: 409,
  PRIVACY_BUDGET_EXHAUSTED: 409,
  AUDIT_REJECTED: 409,
  INTERNAL: 500,
} as const satisfies Record<ErrorCode, number>;

/** The HTTP status an error with `code` is answered with. */
export function httpStatusOf(code: ErrorCode): number {
  return STATUS[code];
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Answers `{ error: { code, message } }` with the code's status; `close` ends the connection after. */
export function sendError(
  res: ServerResponse,
  error: unknown,
  close = false,
  headers: Record<string, string> = {},
): void {
  const wire = toWireError(error);
  sendJson(
    res,
    httpStatusOf(wire.code),
    { error: wire },
    { ...(close ? { connection: 'close' } : {}), ...headers },
  );
}

/** The `Authorization: Bearer <token>` value, or null. */
export function bearer(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  if (!header?.startsWith('Bearer ')) return null;
  return header.slice('Bearer '.length).trim();
}

/**
 * The request body as an iterable that gives up after `idleMs` without a chunk: the client is
 * answered 408 (connection closed), and the iteration then fails, so the blob store drops its
 * temp file. The timer is refreshed per chunk, so a slow but moving upload is not cut.
 */
export async function* idleBoundedBody(
  req: IncomingMessage,
  res: ServerResponse,
  idleMs: number,
): AsyncGenerator<Uint8Array> {
  const timer = setTimeout(() => {
    if (res.headersSent) {
      req.destroy();
      return;
    }
    const text = JSON.stringify({
      error: { code: 'BAD_REQUEST', message: `upload stalled: no bytes for ${idleMs} ms` },
    });
    res.writeHead(408, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      connection: 'close',
    });
    res.end(text, () => req.destroy());
  }, idleMs);
  try {
    for await (const chunk of req as AsyncIterable<Uint8Array>) {
      timer.refresh();
      yield chunk;
    }
  } finally {
    clearTimeout(timer);
  }
}
