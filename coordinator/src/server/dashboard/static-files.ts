import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';

/** A directory served read-only under a URL prefix (e.g. the browser device page `/device/`). */
export interface StaticMount {
  /** URL prefix starting and ending with '/', e.g. `/device/`. */
  urlPrefix: string;
  /** Absolute directory; nothing outside it is ever served. */
  dir: string;
  /** File served for the bare prefix. Default `index.html`. */
  index?: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json',
};

/** Content type by extension; unknown files are plain bytes. */
export function contentTypeOf(path: string): string {
  return TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

/** Sends a file with no-cache headers (pages and bundles change between builds). */
export async function sendFile(req: IncomingMessage, res: ServerResponse, file: string): Promise<void> {
  const body = await readFile(file);
  res.writeHead(200, {
    'content-type': contentTypeOf(file),
    'content-length': body.length,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function notFound(res: ServerResponse): void {
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no such file' } }));
}

/** Serves GET/HEAD under the mounts' prefixes; returns false for any other path. */
export async function handleStaticRequest(
  req: IncomingMessage,
  res: ServerResponse,
  mounts: readonly StaticMount[],
): Promise<boolean> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  const mount = mounts.find((m) => path === m.urlPrefix.slice(0, -1) || path.startsWith(m.urlPrefix));
  if (!mount) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' });
    res.end();
    return true;
  }
  if (path === mount.urlPrefix.slice(0, -1)) {
    res.writeHead(301, { location: mount.urlPrefix });
    res.end();
    return true;
  }
  let relative: string;
  try {
    relative = decodeURIComponent(path.slice(mount.urlPrefix.length)) || (mount.index ?? 'index.html');
  } catch {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({ error: { code: 'BAD_REQUEST', message: 'malformed percent-encoding in the path' } }),
    );
    return true;
  }
  const root = resolve(mount.dir);
  const file = resolve(root, relative);
  // Refuse `..` escapes and anything that resolves outside the mounted directory.
  if (relative.includes('\0') || !file.startsWith(root + sep)) {
    notFound(res);
    return true;
  }
  const info = await stat(file).catch(() => null);
  if (!info?.isFile()) {
    notFound(res);
    return true;
  }
  await sendFile(req, res, file);
  return true;
}
