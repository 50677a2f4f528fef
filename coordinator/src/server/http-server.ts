import { RollbackRequestSchema, type RollbackRequest } from './rollback.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  DeviceIdSchema,
  FlotillaError,
  PublicKeySchema,
  SHA256_HEX,
  TASK_CONTROL_ACTIONS,
  TaskControlRequestSchema,
  toBase64,
  type TaskControlAction,
} from '@flotilla/protocol';
import type { AdapterRegistry } from '../shared/adapter-registry.js';
import type { TaskRegistry } from '../shared/task-registry.js';
import { createBlobRoutes, type BlobRouteDeps } from './blob-routes.js';
import type { DeviceRegistry } from './device-registry.js';
import { bearer, sendError, sendJson } from './http-util.js';
import { operatorTokenMatches } from './sessions.js';
import type { Revocation } from './revocation.js';

export interface HttpDeps {
  /** The /blobs routes' dependencies (blob-routes.ts). */
  blobRoutes: BlobRouteDeps;
  tasks: TaskRegistry;
  adapters: AdapterRegistry;
  devices: DeviceRegistry;
  operatorToken: string | undefined;
  coordinatorPublicKey: Uint8Array;
  /** Creates a task and opens its first round. */
  createTask: (input: unknown) => Promise<unknown>;
  /** Promotes an older version's content as a new version (see rollback.ts). */
  rollback: (taskId: string, request: RollbackRequest) => Promise<unknown>;
  /** Pauses, resumes, stops or archives a task (control-task.ts). */
  controlTask: (request: {
    taskId: string;
    action: TaskControlAction;
    reason?: string | undefined;
  }) => Promise<unknown>;
  /** Revokes a device: enrollment, sessions, its update in open rounds, its sockets (revocation.ts). */
  revokeDevice: (deviceId: string) => Promise<Revocation>;
  logger: Logger;
}

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

/** The JSON body, or `empty` when the request has none. */
async function readJson(req: IncomingMessage, empty?: unknown): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_JSON_BYTES) throw new FlotillaError('PAYLOAD_TOO_LARGE', 'JSON body too large');
    chunks.push(chunk);
  }
  if (size === 0 && empty !== undefined) return empty;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new FlotillaError('BAD_REQUEST', 'body is not JSON');
  }
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
  const blobs = createBlobRoutes(deps.blobRoutes);

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const blob = /^\/blobs\/([^/]+)$/.exec(path);
    if (blob) {
      const digest = blob[1] ?? '';
      if (!SHA256_HEX.test(digest))
        throw new FlotillaError('BAD_REQUEST', 'blob address must be lowercase hex SHA-256');
      return blobs.handle(req, res, digest);
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
      const revocation = await deps.revokeDevice(pathParam(revoke[1]));
      return sendJson(res, 200, {
        ...revocation.device,
        sessionsEnded: revocation.sessionsEnded,
        excludedFrom: revocation.excludedFrom,
      });
    }
    const rollback = /^\/api\/admin\/tasks\/([^/]+)\/rollback$/.exec(path);
    if (rollback && method === 'POST') {
      requireOperator(req);
      const body = parseBody(RollbackRequestSchema, await readJson(req));
      return sendJson(res, 201, await deps.rollback(pathParam(rollback[1]), body));
    }
    const control = /^\/api\/admin\/tasks\/([^/]+)\/([a-z]+)$/.exec(path);
    const action = TASK_CONTROL_ACTIONS.find((a) => a === control?.[2]);
    if (control && action && method === 'POST') {
      requireOperator(req);
      const body = parseBody(TaskControlRequestSchema, await readJson(req, {}));
      return sendJson(
        res,
        200,
        await deps.controlTask({ taskId: pathParam(control[1]), action, reason: body.reason }),
      );
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
