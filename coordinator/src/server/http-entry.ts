import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Logger } from 'pino';

// The one 'request' listener of the coordinator's HTTP server. socket.io (engine.io) attaches
// its own listener to the same server and answers everything under its path itself, whether
// this listener runs before or after it; a second answer to the same response throws
// ERR_HTTP_HEADERS_SENT inside engine.io's callbacks, outside any try, and ends the process.
// So this listener never touches engine.io's paths, and it owns every failure of the others.

export interface RequestEntryDeps {
  /** engine.io's request prefix with its trailing slash: `${io.path()}/`, `/socket.io/` by default. */
  enginePath: string;
  /** Mounted surfaces (metrics, dashboard, audit API, static files); resolves false when none took the request. */
  surfaces: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  /** The HTTP routes (blobs, enrollment, tasks, admin); answers every request it gets, errors included. */
  routes: (req: IncomingMessage, res: ServerResponse) => void;
  logger: Logger;
}

/**
 * True for the requests engine.io answers: the same test as engine.io's own
 * (`path === req.url.slice(0, path.length)`), so the two never disagree about who owns one.
 */
export function isEngineRequest(url: string | undefined, enginePath: string): boolean {
  return (url ?? '').slice(0, enginePath.length) === enginePath;
}

/**
 * Why a request target cannot be routed (a URL that does not parse against a base, or a path
 * with malformed percent-encoding such as `%E0%A4%A`), or null when it can. Every route parses
 * `req.url` the same way, so after this check none of them can throw on it.
 */
export function malformedTarget(url: string | undefined): string | null {
  let pathname: string;
  try {
    pathname = new URL(url ?? '/', 'http://localhost').pathname;
  } catch {
    return 'request target is not a valid URL';
  }
  try {
    decodeURIComponent(pathname);
  } catch {
    return 'malformed percent-encoding in the path';
  }
  return null;
}

function badRequest(res: ServerResponse, message: string): void {
  const text = JSON.stringify({ error: { code: 'BAD_REQUEST', message } });
  res.writeHead(400, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Builds the request listener; see the file header. */
export function createRequestListener(deps: RequestEntryDeps): RequestListener {
  const { logger } = deps;
  const failed = (req: IncomingMessage, res: ServerResponse, error: unknown) => {
    logger.error({ err: error, method: req.method, url: req.url }, 'http request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const text = JSON.stringify({ error: { code: 'INTERNAL', message: 'internal error' } });
    res.writeHead(500, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  return (req, res) => {
    if (isEngineRequest(req.url, deps.enginePath)) return;
    // A stream 'error' with no listener is thrown: a write after the response ended (a handler
    // answering twice), or a body read cut off by the client. Log it; the socket goes away.
    res.on('error', (error: Error) =>
      logger.warn({ err: error.message, method: req.method, url: req.url }, 'http response error'),
    );
    req.on('error', (error: Error) =>
      logger.debug({ err: error.message, method: req.method, url: req.url }, 'http request stream error'),
    );
    try {
      const malformed = malformedTarget(req.url);
      if (malformed !== null) {
        badRequest(res, malformed);
        return;
      }
      deps.surfaces(req, res).then(
        (handled) => {
          if (handled) return;
          try {
            deps.routes(req, res);
          } catch (error) {
            failed(req, res, error);
          }
        },
        (error: unknown) => failed(req, res, error),
      );
    } catch (error) {
      failed(req, res, error);
    }
  };
}
