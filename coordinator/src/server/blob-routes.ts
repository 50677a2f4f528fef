// PUT, GET and HEAD /blobs/:sha256. Who may read what is decided by BlobAccess (raw per-device
// deltas are private); bodies are streamed both ways in bounded chunks, each transfer holds a
// slot of the TransferLimiter, and a transfer that stops moving is cut after an idle timeout.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FlotillaError } from '@flotilla/protocol';
import type { BlobAccess, BlobPrincipal, BlobReader, BlobStore } from '../shared/blob-store/index.js';
import { bearer, idleBoundedBody, sendError, sendJson } from './http-util.js';
import type { RecentUploads } from './recent-uploads.js';
import type { AdmittedDeviceUpload, UploadAdmission } from './upload-admission.js';
import { operatorTokenMatches, type SessionStore } from './sessions.js';
import type { TransferLimiter } from './transfer-limiter.js';

export interface BlobRouteDeps {
  blobs: BlobStore;
  access: BlobAccess;
  sessions: SessionStore;
  operatorToken: string | undefined;
  /** Auditor bearer tokens: they read fleet artifacts and, where the policy allows, raw deltas. */
  auditorTokens: readonly string[];
  /**
   * Admits (or refuses, throwing) the upload of `digest` by the device of a session token: its
   * cap and quota. Null when the token names no live session of an active device.
   */
  admitDeviceUpload(sessionToken: string, digest: string): Promise<AdmittedDeviceUpload | null>;
  /** Largest upload by an operator (base models), bytes. */
  maxOperatorBlobBytes: number;
  /** Milliseconds a PUT may go without receiving a byte before it is answered 408. */
  uploadIdleTimeoutMs: number;
  /** Milliseconds a GET may go without the client taking a byte before its connection is closed. */
  downloadIdleTimeoutMs: number;
  limiter: TransferLimiter;
  /** Devices' uploads kept in memory for the submissions that name them. */
  recentUploads?: RecentUploads;
  /** Called with the bytes of each blob received ('in') or served ('out'), for /metrics. */
  onBlobBytes?: (direction: 'in' | 'out', bytes: number) => void;
}

/** Body bytes read and discarded after refusing a PUT before its body: 1 MiB. */
const REFUSED_BODY_DRAIN_BYTES = 1024 ** 2;

/** Seconds a client refused for load is asked to wait (`retry-after`). */
const BUSY_RETRY_AFTER_S = 1;

/** Limiter key: per device, all auditors together, none for the operator. */
function limiterKey(principal: BlobPrincipal): string | null {
  if (principal.kind === 'device') return `device:${principal.deviceId}`;
  return principal.kind === 'auditor' ? 'auditor' : null;
}

/** `Range: bytes=a-b | a- | -n` against a blob of `size` bytes; null = no (usable) range header. */
function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | null {
  const range = /^bytes=(\d*)-(\d*)$/.exec(header ?? '');
  if (header === undefined || !range) return null;
  const [, a = '', b = ''] = range;
  if (a === '' && b === '') return 'unsatisfiable';
  const start = a === '' ? Math.max(0, size - Number(b)) : Number(a);
  const end = a === '' || b === '' ? size - 1 : Math.min(Number(b), size - 1);
  return start > end || start >= size ? 'unsatisfiable' : { start, end };
}

/** Resolves when `res` can take more bytes, or when its connection is gone. */
function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

/**
 * Writes the reader's chunks, waiting for the socket to drain between them, so a client that
 * stops reading holds one chunk here, not the blob. A client that takes nothing for `idleMs` is
 * disconnected.
 */
async function pump(
  reader: BlobReader,
  res: ServerResponse,
  idleMs: number,
  onBytes: (bytes: number) => void,
): Promise<void> {
  const timer = setTimeout(() => res.destroy(), idleMs);
  try {
    for await (const chunk of reader.chunks) {
      if (res.destroyed) break;
      const more = res.write(chunk);
      onBytes(chunk.length);
      timer.refresh();
      if (!more) await drainedOrClosed(res);
      timer.refresh();
    }
    if (!res.destroyed) res.end();
  } finally {
    clearTimeout(timer);
    await reader.close();
  }
}

export function createBlobRoutes(deps: BlobRouteDeps) {
  /** The operator or an auditor, by their configured tokens; null for any other token. */
  function configuredPrincipal(token: string): BlobPrincipal | null {
    if (operatorTokenMatches(token, deps.operatorToken)) return { kind: 'operator' };
    if (deps.auditorTokens.some((t) => operatorTokenMatches(token, t))) return { kind: 'auditor' };
    return null;
  }

  async function principalOf(req: IncomingMessage): Promise<BlobPrincipal | null> {
    const token = bearer(req);
    if (!token) return null;
    const configured = configuredPrincipal(token);
    if (configured) return configured;
    const deviceId = await deps.sessions.resolve(token);
    return deviceId === null ? null : { kind: 'device', deviceId };
  }

  /**
   * Answers a PUT before reading its body. Closing at once with the body unread makes the kernel
   * reset the connection, and the client can lose the answer: a body of declared size up to
   * `REFUSED_BODY_DRAIN_BYTES` is read and discarded (the connection stays usable); a larger or
   * undeclared one is read up to that many bytes while the answer goes out, then cut.
   */
  function refuseBeforeBody(req: IncomingMessage, res: ServerResponse, error: FlotillaError, headers = {}) {
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    const small = Number.isFinite(declared) && declared <= REFUSED_BODY_DRAIN_BYTES;
    sendError(res, error, !small, headers);
    if (!small) {
      let drained = 0;
      req.on('data', (chunk: Uint8Array) => {
        drained += chunk.length;
        if (drained > REFUSED_BODY_DRAIN_BYTES) req.destroy();
      });
    }
    req.resume();
  }

  /** Who uploads and within what; throws the refusal (answered before the body is read). */
  async function admit(
    req: IncomingMessage,
    digest: string,
  ): Promise<{ principal: BlobPrincipal; admission: UploadAdmission }> {
    const unauthorized = () =>
      new FlotillaError('UNAUTHORIZED', 'Bearer session token or operator token required');
    const token = bearer(req);
    if (!token) throw unauthorized();
    const configured = configuredPrincipal(token);
    if (configured?.kind === 'auditor') throw new FlotillaError('FORBIDDEN', 'auditors cannot upload blobs');
    if (configured?.kind === 'operator')
      return {
        principal: configured,
        admission: { maxBytes: deps.maxOperatorBlobBytes, release: () => Promise.resolve() },
      };
    // The session and the admission in one Redis round trip (upload-admit.lua).
    const device = await deps.admitDeviceUpload(token, digest);
    if (device === null) throw unauthorized();
    return { principal: { kind: 'device', deviceId: device.deviceId }, admission: device.admission };
  }

  async function put(req: IncomingMessage, res: ServerResponse, digest: string): Promise<void> {
    let admitted;
    try {
      admitted = await admit(req, digest);
    } catch (error) {
      if (!(error instanceof FlotillaError)) throw error;
      refuseBeforeBody(req, res, error);
      return;
    }
    const { principal, admission } = admitted;
    const cap = admission.maxBytes;
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (Number.isFinite(declared) && declared > cap) {
      await admission.release();
      refuseBeforeBody(req, res, new FlotillaError('BLOB_TOO_LARGE', `blob exceeds ${cap} bytes`));
      return;
    }
    const slot = deps.limiter.tryAcquire(limiterKey(principal));
    if (!slot) {
      await admission.release();
      refuseBeforeBody(req, res, new FlotillaError('RATE_LIMITED', 'too many blob transfers: retry later'), {
        'retry-after': String(BUSY_RETRY_AFTER_S),
      });
      return;
    }
    try {
      // An existing digest is hashed, capped and timed like a new upload: the answer says
      // whether these bytes are that blob, and only then is the uploader recorded.
      const body = idleBoundedBody(req, res, deps.uploadIdleTimeoutMs);
      const copy =
        principal.kind === 'device' && deps.recentUploads
          ? deps.recentUploads.copy(body, declared)
          : { source: body, keep: () => undefined };
      const { bytes, stored } = await deps.blobs.putStream(digest, copy.source, { maxBytes: cap });
      if (principal.kind === 'device') await deps.access.addUploader(digest, principal.deviceId);
      copy.keep(digest);
      deps.onBlobBytes?.('in', bytes);
      sendJson(res, stored ? 201 : 200, { digest, bytes, stored });
    } catch (error) {
      await admission.release().catch(() => undefined);
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
    } finally {
      slot();
    }
  }

  async function get(req: IncomingMessage, res: ServerResponse, digest: string, head: boolean) {
    const principal = await principalOf(req);
    if (principal === null) {
      sendError(
        res,
        new FlotillaError('UNAUTHORIZED', 'Bearer session, auditor or operator token required'),
        false,
        {
          'www-authenticate': 'Bearer',
        },
      );
      return;
    }
    // Authorization comes before existence, so a refusal says nothing about what is stored.
    if (!(await deps.access.canRead(principal, digest)))
      throw new FlotillaError('FORBIDDEN', `blob ${digest} is not readable with this token`);
    const size = await deps.blobs.size(digest);
    if (size === null) throw new FlotillaError('BLOB_MISSING', `blob ${digest} not found`);
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      // private: a shared cache must not hand an authenticated answer to someone else.
      'cache-control': 'private, max-age=31536000, immutable',
      etag: `"${digest}"`,
      'accept-ranges': 'bytes',
    };
    if (req.headers['if-none-match'] === `"${digest}"`) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const range = parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${size}` });
      res.end();
      return;
    }
    const status = range ? 206 : 200;
    const { start, end } = range ?? { start: 0, end: size - 1 };
    const partHeaders = {
      ...headers,
      'content-length': end - start + 1,
      ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
    };
    if (head) {
      res.writeHead(status, partHeaders);
      res.end();
      return;
    }
    const slot = deps.limiter.tryAcquire(limiterKey(principal));
    if (!slot) {
      sendError(res, new FlotillaError('RATE_LIMITED', 'too many blob transfers: retry later'), false, {
        'retry-after': String(BUSY_RETRY_AFTER_S),
      });
      return;
    }
    try {
      const reader = await deps.blobs.openRead(digest, { start, endInclusive: end });
      if (!reader) throw new FlotillaError('BLOB_MISSING', `blob ${digest} not found`);
      res.writeHead(status, partHeaders);
      await pump(reader, res, deps.downloadIdleTimeoutMs, (n) => deps.onBlobBytes?.('out', n));
    } finally {
      slot();
    }
  }

  return {
    /** Handles a request on `/blobs/<digest>` (digest already validated). */
    async handle(req: IncomingMessage, res: ServerResponse, digest: string): Promise<void> {
      const method = req.method ?? 'GET';
      if (method === 'PUT') return put(req, res, digest);
      if (method === 'GET' || method === 'HEAD') return get(req, res, digest, method === 'HEAD');
      throw new FlotillaError('BAD_REQUEST', `${method} not allowed on blobs`);
    },
  };
}
