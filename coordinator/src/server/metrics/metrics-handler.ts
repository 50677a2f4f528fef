import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FlotillaMetrics } from './flotilla-metrics.js';

export interface MetricsHandlerDeps {
  metrics: FlotillaMetrics;
  /** Bearer token Prometheus must present; undefined: /metrics is open (the server binds 127.0.0.1 by default). */
  token?: string;
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

function tokenMatches(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization;
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return false;
  return timingSafeEqual(digest(header.slice('Bearer '.length).trim()), digest(token));
}

/** Serves `GET /metrics` (Prometheus text format); returns false for any other path. */
export async function handleMetricsRequest(
  req: IncomingMessage,
  res: ServerResponse,
  deps: MetricsHandlerDeps,
): Promise<boolean> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path !== '/metrics') return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
    res.end('only GET\n');
    return true;
  }
  if (deps.token !== undefined && !tokenMatches(req, deps.token)) {
    res.writeHead(401, { 'www-authenticate': 'Bearer', 'content-type': 'text/plain' });
    res.end('metrics token required\n');
    return true;
  }
  const body = await deps.metrics.text();
  res.writeHead(200, {
    'content-type': deps.metrics.contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
