import { RollbackRequestSchema, type RollbackRequest } from './rollback.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  DeviceIdSchema,
  FlotillaError,
  PublicKeySchema,
  SHA256_HEX,
  toBase64,
  toWireError,
  type ErrorCode,
} from '@flotilla/protocol';
import type { AdapterRegistry } from '../shared/adapter-registry.js';
import type { BlobStore } from '../shared/blob-store/index.js';
import type { TaskRegistry } from '../shared/task-registry.js';
import type { DeviceRegistry } from './device-registry.js';
import { operatorTokenMatches, type SessionStore } from './sessions.js';

export interface HttpDeps {
  blobs: BlobStore;
  tasks: TaskRegistry;
  adapters: AdapterRegistry;
  devices: DeviceRegistry;
  sessions: SessionStore;
  operatorToken: string | undefined;
  coordinatorPublicKey: Uint8Array;
  /** Largest upload by an operator (base models), bytes. */
  maxOperatorBlobBytes: number;
  /** Global cap on device uploads, bytes; per-task policy caps apply below it. */
  maxDeviceBlobBytes: number;
  /**
   * Milliseconds an upload may go without receiving a byte before it is answered 408 and its
   * connection closed (a stalled or slow-loris PUT must not hold a socket and a temp file).
   */
  uploadIdleTimeoutMs: number;
  /** Creates a task and opens its first round. */
  createTask: (input: unknown) => Promise<unknown>;
  /** Promotes an older version's content as a new version (see rollback.ts). */
  rollback: (taskId: string, request: RollbackRequest) => Promise<unknown>;
  /** Called with the bytes of each blob stored ('in') or served ('out'), for /metrics. */
  onBlobBytes?: (direction: 'in' | 'out', bytes: number) => void;
  logger: Logger;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  BAD_REQUEST: 400,
  DIGEST_MISMATCH: 400,
  CORRUPT_FILE: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  UNKNOWN_DEVICE: 404,
  BLOB_MISSING: 404,
  PAYLOAD_TOO_LARGE: 413,
  BLOB_TOO_LARGE: 413,
  RATE_LIMITED: 429,
};

const EnrollRequestSchema = z.object({
  token: z.string().min(16).max(256),
  deviceId: DeviceIdSchema,
  publicKey: PublicKeySchema,
});
const RegisterRequestSchema = z.object({ deviceId: DeviceIdSchema, publicKey: PublicKeySchema });
const TokenRequestSchema = z.object({
  ttlMs: z
    .number()
    .int()
    .positive()
    .max(30 * 86_400_000)
    .optional(),
});
const MAX_JSON_BYTES = 1_000_000;

function sendJson(
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

function sendError(res: ServerResponse, error: unknown, close = false): void {
  const wire = toWireError(error);
  const status = wire.code === 'INTERNAL' ? 500 : (STATUS[wire.code] ?? 409);
  sendJson(res, status, { error: wire }, close ? { connection: 'close' } : {});
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_JSON_BYTES) throw new FlotillaError('PAYLOAD_TOO_LARGE', 'JSON body too large');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new FlotillaError('BAD_REQUEST', 'body is not JSON');
  }
}

/**
 * The request body as an iterable that gives up after `idleMs` without a chunk: the client is
 * answered 408 (connection closed), and the iteration then fails, so the blob store drops its
 * temp file. The timer is refreshed per chunk, so a slow but moving upload is not cut.
 */
async function* idleBoundedBody(
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

function bearer(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  if (!header?.startsWith('Bearer ')) return null;
  return header.slice('Bearer '.length).trim();
}

/** A percent-encoded path segment, decoded; malformed encoding is the client's error (400). */
function pathParam(segment: string | undefined): string {
  try {
    return decodeURIComponent(segment ?? '');
  } catch {
    throw new FlotillaError('BAD_REQUEST', 'malformed percent-encoding in the path');
  }
}

function parseBody<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw new FlotillaError('BAD_REQUEST', parsed.error.issues[0]?.message ?? 'invalid body');
  return parsed.data;
}

/** The coordinator's HTTP routes (everything except /socket.io/). */
export function createHttpHandler(deps: HttpDeps) {
  const isOperator = (req: IncomingMessage) => operatorTokenMatches(bearer(req) ?? '', deps.operatorToken);
  const requireOperator = (req: IncomingMessage) => {
    if (!isOperator(req)) throw new FlotillaError('UNAUTHORIZED', 'operator token required');
  };

  async function deviceUploadCap(): Promise<number> {
    const tasks = await deps.tasks.listTasks();
    const perTask = tasks.map((t) => t.task.policy.maxBlobBytes);
    return Math.min(
      deps.maxDeviceBlobBytes,
      perTask.length > 0 ? Math.max(...perTask) : deps.maxDeviceBlobBytes,
    );
  }

  async function putBlob(req: IncomingMessage, res: ServerResponse, digest: string): Promise<void> {
    const token = bearer(req);
    let cap: number;
    if (token && isOperator(req)) cap = deps.maxOperatorBlobBytes;
    else if (token && (await deps.sessions.resolve(token))) cap = await deviceUploadCap();
    else throw new FlotillaError('UNAUTHORIZED', 'Bearer session token or operator token required');
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (Number.isFinite(declared) && declared > cap) {
      // Answer before reading the body; the connection is closed afterwards.
      sendError(res, new FlotillaError('BLOB_TOO_LARGE', `blob exceeds ${cap} bytes`), true);
      req.resume();
      return;
    }
    if (await deps.blobs.has(digest)) {
      req.resume();
      await new Promise((r) => req.once('end', r));
      sendJson(res, 200, { digest, stored: false });
      return;
    }
    try {
      const body = idleBoundedBody(req, res, deps.uploadIdleTimeoutMs);
      const { bytes } = await deps.blobs.putStream(digest, body, { maxBytes: cap });
      deps.onBlobBytes?.('in', bytes);
      sendJson(res, 201, { digest, bytes, stored: true });
    } catch (error) {
      // A stalled upload was already answered 408; its connection is gone.
      if (res.headersSent) return;
      if (!(error instanceof FlotillaError) && req.readableAborted) {
        // The client closed before sending content-length bytes: its input, not our fault.
        sendError(res, new FlotillaError('BAD_REQUEST', 'upload ended before content-length'), true);
        return;
      }
      const tooLarge = FlotillaError.is(error, 'BLOB_TOO_LARGE');
      sendError(res, error, tooLarge);
      if (tooLarge) req.resume();
    }
  }

  async function getBlob(
    req: IncomingMessage,
    res: ServerResponse,
    digest: string,
    head: boolean,
  ): Promise<void> {
    const size = await deps.blobs.size(digest);
    if (size === null) throw new FlotillaError('BLOB_MISSING', `blob ${digest} not found`);
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'cache-control': 'public, max-age=31536000, immutable',
      etag: `"${digest}"`,
      'accept-ranges': 'bytes',
    };
    if (req.headers['if-none-match'] === `"${digest}"`) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    if (req.headers.range !== undefined && range) {
      const [, a = '', b = ''] = range;
      let start = a === '' ? Math.max(0, size - Number(b)) : Number(a);
      let end = a === '' ? size - 1 : b === '' ? size - 1 : Math.min(Number(b), size - 1);
      if (a === '' && b === '') [start, end] = [size, size - 1];
      if (start > end || start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` });
        res.end();
        return;
      }
      const part = head ? new Uint8Array(0) : await deps.blobs.getRange(digest, start, end);
      res.writeHead(206, {
        ...headers,
        'content-range': `bytes ${start}-${end}/${size}`,
        'content-length': end - start + 1,
      });
      res.end(head ? undefined : part);
      if (part) deps.onBlobBytes?.('out', part.length);
      return;
    }
    const bytes = head ? null : await deps.blobs.get(digest);
    res.writeHead(200, { ...headers, 'content-length': size });
    res.end(bytes ?? undefined);
    if (bytes) deps.onBlobBytes?.('out', bytes.length);
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const blob = /^\/blobs\/([^/]+)$/.exec(path);
    if (blob) {
      const digest = blob[1] ?? '';
      if (!SHA256_HEX.test(digest))
        throw new FlotillaError('BAD_REQUEST', 'blob address must be lowercase hex SHA-256');
      if (method === 'PUT') return putBlob(req, res, digest);
      if (method === 'GET' || method === 'HEAD') return getBlob(req, res, digest, method === 'HEAD');
      throw new FlotillaError('BAD_REQUEST', `${method} not allowed on blobs`);
    }
    if (path === '/api/enroll' && method === 'POST') {
      const body = parseBody(EnrollRequestSchema, await readJson(req));
      const record = await deps.devices.enrollWithToken(body);
      return sendJson(res, 201, {
        deviceId: record.deviceId,
        coordinatorKey: toBase64(deps.coordinatorPublicKey),
      });
    }
    if (path === '/api/admin/enrollment-tokens' && method === 'POST') {
      requireOperator(req);
      const body = parseBody(TokenRequestSchema, await readJson(req));
      return sendJson(
        res,
        201,
        await deps.devices.createEnrollmentToken(body.ttlMs !== undefined ? { ttlMs: body.ttlMs } : {}),
      );
    }
    if (path === '/api/admin/devices') {
      requireOperator(req);
      if (method === 'GET') return sendJson(res, 200, { devices: await deps.devices.listDevices() });
      if (method === 'POST')
        return sendJson(
          res,
          201,
          await deps.devices.registerDevice(parseBody(RegisterRequestSchema, await readJson(req))),
        );
    }
    const revoke = /^\/api\/admin\/devices\/([^/]+)$/.exec(path);
    if (revoke && method === 'DELETE') {
      requireOperator(req);
      return sendJson(res, 200, await deps.devices.revokeDevice(pathParam(revoke[1])));
    }
    const rollback = /^\/api\/admin\/tasks\/([^/]+)\/rollback$/.exec(path);
    if (rollback && method === 'POST') {
      requireOperator(req);
      const body = parseBody(RollbackRequestSchema, await readJson(req));
      return sendJson(res, 201, await deps.rollback(pathParam(rollback[1]), body));
    }
    if (path === '/api/admin/tasks' && method === 'POST') {
      requireOperator(req);
      return sendJson(res, 201, await deps.createTask(await readJson(req)));
    }
    if (method === 'GET') {
      const task = /^\/api\/tasks\/([^/]+)$/.exec(path);
      if (task) {
        const signed = await deps.tasks.getTask(pathParam(task[1]));
        if (!signed) throw new FlotillaError('NOT_FOUND', 'task not found');
        return sendJson(res, 200, signed);
      }
      const manifest = /^\/api\/tasks\/([^/]+)\/adapters\/(latest|\d+)\/manifest$/.exec(path);
      if (manifest) {
        const taskId = pathParam(manifest[1]);
        const version =
          manifest[2] === 'latest' ? await deps.adapters.latestVersion(taskId) : Number(manifest[2]);
        const signed = version > 0 ? await deps.adapters.getManifest(taskId, version) : null;
        if (!signed)
          throw new FlotillaError('NOT_FOUND', `no adapter version ${manifest[2] ?? ''} for ${taskId}`);
        return sendJson(res, 200, signed, manifest[2] === 'latest' ? { 'cache-control': 'no-cache' } : {});
      }
      if (path === '/healthz') return sendJson(res, 200, { ok: true });
    }
    throw new FlotillaError('NOT_FOUND', `no route ${method} ${path}`);
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
    route(req, res).catch((error: unknown) => {
      if (!(error instanceof FlotillaError))
        deps.logger.error({ err: error, url: req.url }, 'http handler failed');
      if (!res.headersSent) sendError(res, error);
      else res.destroy();
    });
  };
}
