// Issue 15 (low): a path with malformed percent-encoding (`%E0%A4%A`: a truncated UTF-8 escape)
// was answered 500 with an error-level stack in the log. Against a coordinator process, every
// route that decodes a path segment, and every mounted surface, answers 400 BAD_REQUEST, and
// nothing is logged at error level.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniquePrefix } from '../../test-support/redis.js';
import { rawRequest, startCoordinatorProcess, statusOf, type ChildCoordinator } from './support/index.js';

const OPERATOR = 'operator-token-for-malformed-paths-0123';
const BAD = '%E0%A4%A';

/** pino's error (50) and fatal (60) lines. */
const errorLines = (logs: string[]) =>
  logs.filter((line) => {
    try {
      return ((JSON.parse(line) as { level?: number }).level ?? 0) >= 50;
    } catch {
      return false;
    }
  });

describe('malformed percent-encoding in a path', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'flotilla-bad-path-'));
  let child: ChildCoordinator;

  beforeAll(async () => {
    child = await startCoordinatorProcess({
      prefix: uniquePrefix('bad-path'),
      stateDir,
      operatorToken: OPERATOR,
    });
  });
  afterAll(async () => {
    await child.kill();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('answers 400 BAD_REQUEST on every route, with nothing logged at error level', async () => {
    const operator = { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' };
    const requests: Array<{ method: string; path: string; headers?: Record<string, string>; body?: string }> =
      [
        { method: 'GET', path: `/api/tasks/${BAD}` },
        { method: 'GET', path: `/api/tasks/${BAD}/adapters/latest/manifest` },
        { method: 'GET', path: `/api/tasks/${BAD}/adapters/3/manifest` },
        { method: 'DELETE', path: `/api/admin/devices/${BAD}`, headers: operator },
        {
          method: 'POST',
          path: `/api/admin/tasks/${BAD}/rollback`,
          headers: operator,
          body: '{"version":1}',
        },
        { method: 'GET', path: `/blobs/${BAD}` },
        { method: 'GET', path: `/dashboard/${BAD}` },
        { method: 'GET', path: `/api/audit/rounds/${BAD}` },
        { method: 'GET', path: `/metrics${BAD}` },
        { method: 'GET', path: `/${BAD}` },
      ];
    for (const { method, path, headers, body } of requests) {
      const res = await fetch(`${child.url}${path}`, {
        method,
        ...(headers ? { headers } : {}),
        ...(body ? { body } : {}),
      });
      expect(res.status, `${method} ${path}`).toBe(400);
      expect(await res.json(), `${method} ${path}`).toMatchObject({ error: { code: 'BAD_REQUEST' } });
    }
    // A request target that does not parse as a URL against a base (`//`: an authority with no
    // host; fetch would not send it) gets 400 as well.
    const raw = await rawRequest({
      port: Number(new URL(child.url).port),
      head: 'GET // HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      body: new Uint8Array(0),
      then: 'end',
      timeoutMs: 10_000,
    });
    expect(statusOf(raw.response)).toBe(400);

    // A well-formed escape still reaches its route (an unknown task: 404).
    expect((await fetch(`${child.url}/api/tasks/no%20such%20task`)).status).toBe(404);
    expect(errorLines(child.logs)).toEqual([]);
    expect(child.child.exitCode).toBeNull();
  });
});
