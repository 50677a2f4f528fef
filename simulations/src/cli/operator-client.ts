import { FlotillaError, ERROR_CODES, type ErrorCode } from '@flotilla/protocol';
import { ConfigError, type FlotillaConfig } from './config.js';

/** Calls the coordinator's operator HTTP API with the operator token. */
export class OperatorClient {
  constructor(private readonly config: FlotillaConfig) {}

  private token(): string {
    if (!this.config.operatorToken) {
      throw new ConfigError(
        'operatorToken: required for this command (set FLOTILLA_OPERATOR_TOKEN or operatorToken in the config file)',
      );
    }
    return this.config.operatorToken;
  }

  async request<T>(method: string, path: string, body?: unknown, raw?: Uint8Array): Promise<T> {
    const url = new URL(path, this.config.coordinatorUrl);
    const token = this.token();
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(raw
            ? { 'content-type': 'application/octet-stream' }
            : body !== undefined
              ? { 'content-type': 'application/json' }
              : {}),
        },
        ...(raw
          ? { body: new Blob([new Uint8Array(raw)]) }
          : body !== undefined
            ? { body: JSON.stringify(body) }
            : {}),
      });
    } catch (error) {
      throw new FlotillaError(
        'INTERNAL',
        `cannot reach the coordinator at ${url.origin}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const text = await response.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    if (!response.ok) {
      const wire = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
      const code: ErrorCode = ERROR_CODES.includes(wire?.code as ErrorCode)
        ? (wire?.code as ErrorCode)
        : 'INTERNAL';
      throw new FlotillaError(code, wire?.message ?? `HTTP ${response.status} from ${method} ${path}`);
    }
    return parsed as T;
  }
}
