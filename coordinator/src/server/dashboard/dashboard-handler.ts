import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { DashboardSource } from './dashboard-source.js';
import type { DashboardRole } from './dashboard-snapshot.js';
import { sendFile } from './static-files.js';

// The operator/auditor dashboard, all under /dashboard:
//   GET /dashboard                 the page (login form, then the live view)
//   GET /dashboard/assets/<file>   its script and stylesheet (no CDN: the page works offline)
//   GET /dashboard/api/state       one snapshot (JSON)                    Bearer operator|auditor token
//   GET /dashboard/api/stream      Server-Sent Events: `event: state` with a snapshot whenever it
//                                  changes (checked every streamIntervalMs), `: ping` otherwise
// The page reads the stream with fetch() so the token travels in the Authorization header, never
// in a URL. Auditors get the same data minus the device list, and no actions.

export interface DashboardDeps {
  source: DashboardSource;
  /** Operator bearer token (full view). Undefined: no operator login. */
  operatorToken?: string;
  /** Auditor bearer tokens (read-only view, no device ids). */
  auditorTokens?: readonly string[];
  /** How often the stream looks for changes, in ms. Default 1000. */
  streamIntervalMs?: number;
  /** A comment line is sent after this much silence, in ms, to keep proxies from closing. Default 15 000. */
  keepAliveMs?: number;
  /** Aborting ends every open stream (the coordinator aborts it on close). */
  signal?: AbortSignal;
  logger?: Logger;
}

const ASSETS_DIR = fileURLToPath(new URL('./assets/', import.meta.url));
/** The only files /dashboard/assets/ serves. */
const ASSETS = new Set(['dashboard.js', 'views.js', 'charts.js', 'dashboard.css']);

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

function sameToken(presented: Buffer, token: string | undefined): boolean {
  return token !== undefined && token.length > 0 && timingSafeEqual(presented, digest(token));
}

/** The role a request's bearer token grants, or null. */
export function dashboardRole(req: IncomingMessage, deps: DashboardDeps): DashboardRole | null {
  const header = req.headers.authorization;
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return null;
  // Hashing first makes every comparison equal-length and constant-time.
  const presented = digest(header.slice('Bearer '.length).trim());
  if (sameToken(presented, deps.operatorToken)) return 'operator';
  let auditor = false;
  for (const token of deps.auditorTokens ?? []) if (sameToken(presented, token)) auditor = true;
  return auditor ? 'auditor' : null;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** Handles everything under /dashboard; returns false (touching nothing) for other paths. */
export async function handleDashboardRequest(
  req: IncomingMessage,
  res: ServerResponse,
  deps: DashboardDeps,
): Promise<boolean> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path !== '/dashboard' && !path.startsWith('/dashboard/')) return false;
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    sendJson(
      res,
      405,
      { error: { code: 'BAD_REQUEST', message: 'the dashboard is read-only' } },
      { allow: 'GET' },
    );
    return true;
  }
  try {
    if (path === '/dashboard' || path === '/dashboard/') {
      await sendFile(req, res, `${ASSETS_DIR}dashboard.html`);
      return true;
    }
    const asset = /^\/dashboard\/assets\/([a-z-]+\.(?:js|css))$/.exec(path)?.[1];
    if (asset !== undefined && ASSETS.has(asset)) {
      await sendFile(req, res, `${ASSETS_DIR}${asset}`);
      return true;
    }
    if (path === '/dashboard/api/state' || path === '/dashboard/api/stream') {
      const role = dashboardRole(req, deps);
      if (!role) {
        sendJson(
          res,
          401,
          { error: { code: 'UNAUTHORIZED', message: 'an operator or auditor bearer token is required' } },
          { 'www-authenticate': 'Bearer' },
        );
        return true;
      }
      if (path === '/dashboard/api/state') sendJson(res, 200, await deps.source.snapshot(role));
      else streamSnapshots(req, res, deps, role);
      return true;
    }
    sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `no dashboard resource ${path}` } });
  } catch (error) {
    deps.logger?.error({ err: error, path }, 'dashboard request failed');
    if (!res.headersSent) sendJson(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
    else res.destroy();
  }
  return true;
}

/** Server-Sent Events: a `state` event whenever the snapshot changed, pings in between. */
function streamSnapshots(
  req: IncomingMessage,
  res: ServerResponse,
  deps: DashboardDeps,
  role: DashboardRole,
): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write('retry: 2000\n\n');
  let last = '';
  let lastWrite = Date.now();
  let busy = false;
  let timer: NodeJS.Timeout | undefined;
  const end = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
    deps.signal?.removeEventListener('abort', end);
    if (!res.writableEnded) res.end();
  };
  const tick = async () => {
    if (busy || res.writableEnded) return;
    busy = true;
    try {
      const snapshot = await deps.source.snapshot(role);
      // serverTime changes every build; compare the rest so an idle fleet sends only pings.
      const text = JSON.stringify({ ...snapshot, serverTime: 0 });
      if (text !== last) {
        last = text;
        lastWrite = Date.now();
        res.write(`event: state\ndata: ${JSON.stringify(snapshot)}\n\n`);
      } else if (Date.now() - lastWrite >= (deps.keepAliveMs ?? 15_000)) {
        lastWrite = Date.now();
        res.write(': ping\n\n');
      }
    } catch (error) {
      deps.logger?.warn({ err: error }, 'dashboard stream snapshot failed');
    } finally {
      busy = false;
    }
  };
  if (deps.signal?.aborted) return end();
  deps.signal?.addEventListener('abort', end, { once: true });
  req.on('close', end);
  timer = setInterval(() => void tick(), deps.streamIntervalMs ?? 1000);
  void tick();
}
