import { FlotillaError, HTTP_ROUTES, WireErrorSchema, type ErrorCode, ERROR_CODES } from '@flotilla/protocol';
import type { AdapterFetcher } from '../cache/catch-up.js';
import { withRetry, type BackoffOptions } from './retry.js';

/** The `fetch` the runtime uses; injectable for tests and for environments without a global one. */
export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

/** An HTTP failure with its status: 5xx and network failures are retried, 4xx are not. */
export class HttpStatusError extends FlotillaError {
  readonly status: number;

  constructor(status: number, code: ErrorCode, message: string) {
    super(code, message, { details: { status } });
    this.status = status;
  }
}

export interface CoordinatorHttpOptions {
  /** Coordinator base URL, e.g. `http://127.0.0.1:8080`; a function for one that changes (failover). */
  url: string | (() => string);
  /** Returns the current session bearer token (null before the first authentication). */
  sessionToken: () => string | null;
  fetch?: FetchFn;
  /** Backoff for blob uploads and downloads. */
  retry?: BackoffOptions;
  signal?: AbortSignal;
}

/** The coordinator's HTTP routes a device uses: blobs up and down, adapter manifests. */
export class CoordinatorHttp implements AdapterFetcher {
  private readonly fetchFn: FetchFn;

  constructor(private readonly options: CoordinatorHttpOptions) {
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /** The base URL in use now (the coordinator the device's socket is connected to). */
  private base(): string {
    const url = typeof this.options.url === 'string' ? this.options.url : this.options.url();
    return url.replace(/\/+$/, '');
  }

  /**
   * `PUT /blobs/:sha256` with the bearer session token. Network errors and 5xx are retried with
   * exponential backoff and jitter; a 4xx is final (the coordinator refused the blob itself).
   */
  async uploadBlob(digest: string, bytes: Uint8Array): Promise<void> {
    await this.withRetry(async () => {
      const response = await this.request(HTTP_ROUTES.blob(digest), {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', ...this.authHeader() },
        // A copy typed as ArrayBuffer-backed, which is what BodyInit accepts.
        body: new Uint8Array(bytes),
      });
      await response.arrayBuffer();
    });
  }

  /**
   * `GET /blobs/:sha256` with the bearer session token: the coordinator serves base models and
   * promoted artifacts to enrolled devices only (and a device's own uploads back to it). Untrusted
   * bytes; the caller verifies the digest. A 401 is retried too: the session may be renewed
   * (reconnection) between attempts.
   */
  fetchBlob(digest: string): Promise<Uint8Array> {
    return this.withRetry(async () => {
      const response = await this.request(HTTP_ROUTES.blob(digest), { headers: this.authHeader() });
      return new Uint8Array(await response.arrayBuffer());
    }, isRetryableDownloadError);
  }

  /** `GET /api/tasks/:taskId`: the signed task (untrusted JSON; the caller checks the signature). */
  fetchTask(taskId: string): Promise<unknown> {
    return this.withRetry(async () => {
      const response = await this.request(HTTP_ROUTES.task(taskId), {});
      return (await response.json()) as unknown;
    });
  }

  /** `GET /api/tasks/:taskId/adapters/:version|latest/manifest` (untrusted JSON). */
  fetchManifest(taskId: string, version: number | 'latest'): Promise<unknown> {
    const path =
      version === 'latest' ? HTTP_ROUTES.latestManifest(taskId) : HTTP_ROUTES.manifest(taskId, version);
    return this.withRetry(async () => {
      const response = await this.request(path, { headers: this.authHeader() });
      return (await response.json()) as unknown;
    });
  }

  /** One request; throws HttpStatusError for a non-2xx answer with the coordinator's error code. */
  async request(path: string, init: RequestInit): Promise<Response> {
    const response = await this.fetchFn(`${this.base()}${path}`, {
      ...init,
      ...(this.options.signal ? { signal: this.options.signal } : {}),
    });
    if (response.ok) return response;
    let code: ErrorCode =
      response.status >= 500 ? 'INTERNAL' : response.status === 404 ? 'NOT_FOUND' : 'BAD_REQUEST';
    let message = `HTTP ${response.status} on ${path}`;
    try {
      const body: unknown = await response.json();
      const parsed = WireErrorSchema.safeParse(
        typeof body === 'object' && body !== null && 'error' in body ? body.error : body,
      );
      if (parsed.success) {
        code = isErrorCode(parsed.data.code) ? parsed.data.code : code;
        message = `${message}: ${parsed.data.message}`;
      }
    } catch {
      // Not JSON: the status alone says enough.
    }
    throw new HttpStatusError(response.status, code, message);
  }

  private authHeader(): Record<string, string> {
    const token = this.options.sessionToken();
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  private withRetry<T>(
    attempt: () => Promise<T>,
    isRetryable: (error: unknown) => boolean = isRetryableHttpError,
  ): Promise<T> {
    return withRetry(attempt, {
      ...this.options.retry,
      ...(this.options.signal ? { signal: this.options.signal } : {}),
      isRetryable,
    });
  }
}

/**
 * Network failures (fetch rejects with a TypeError), 5xx and `429 RATE_LIMITED` (the coordinator
 * has too many blob transfers in flight) are transient; any other 4xx is the server's answer
 * (`429 QUOTA_EXCEEDED` included: the upload quota lasts the round).
 */
export function isRetryableHttpError(error: unknown): boolean {
  if (error instanceof HttpStatusError)
    return error.status >= 500 || (error.status === 429 && error.code === 'RATE_LIMITED');
  if (error instanceof FlotillaError) return false;
  return error instanceof TypeError;
}

/** As `isRetryableHttpError`, and a 401 (a download outlived its session; the next attempt uses the new one). */
function isRetryableDownloadError(error: unknown): boolean {
  return isRetryableHttpError(error) || (error instanceof HttpStatusError && error.status === 401);
}

function isErrorCode(code: string): code is ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(code);
}
