import type { z } from 'zod';
import { AuthChallengeSchema, AuthResponseSchema, AuthResultSchema } from './messages/handshake.js';
import { CheckInResultSchema, CheckInSchema, NotSelectedSchema } from './messages/checkin.js';
import { RoundClosedSchema, RoundPlanSchema } from './messages/round-plan.js';
import {
  UpdateReceiptSchema,
  UpdateRefusalSchema,
  UpdateSkipResultSchema,
  UpdateSkipSchema,
  UpdateSubmissionSchema,
} from './messages/update.js';
import { AdapterPromotedSchema } from './messages/manifest.js';
import { LogProofRequestSchema, LogProofResultSchema } from './messages/log-proof.js';
import { WireErrorSchema, type Ack } from './messages/primitives.js';

// The socket messages, as data (after tRPC's .input()/.output()): a device's requests with the
// schema of their payload and of their ack's data, and the coordinator's notices with the schema
// of their payload. The socket.io event maps, the coordinator's handler table and the device's
// typed call are derived from these two tables, so a new message is one row here, and the
// compiler then names the handler that is missing (docs/protocol.md describes each message).

/**
 * A device's request: its payload schema, its ack data schema, the schema of its error ack's
 * `error`, and whether it needs a session.
 */
export interface RequestSpec {
  input: z.ZodType;
  output: z.ZodType;
  /** The `error` of an `{ ok: false }` ack: `{ code, message }`, or more where a refusal says more. */
  refusal: z.ZodType<z.output<typeof WireErrorSchema>>;
  /** False only for the message that opens the session (the answer to the challenge). */
  authenticated: boolean;
}

/** Socket.io events a device sends. Every one carries an ack callback; payloads are validated. */
export const CLIENT_REQUESTS = {
  'auth:response': {
    input: AuthResponseSchema,
    output: AuthResultSchema,
    refusal: WireErrorSchema,
    authenticated: false,
  },
  checkin: {
    input: CheckInSchema,
    output: CheckInResultSchema,
    refusal: WireErrorSchema,
    authenticated: true,
  },
  'update:submit': {
    input: UpdateSubmissionSchema,
    output: UpdateReceiptSchema,
    refusal: UpdateRefusalSchema,
    authenticated: true,
  },
  'update:skip': {
    input: UpdateSkipSchema,
    output: UpdateSkipResultSchema,
    refusal: WireErrorSchema,
    authenticated: true,
  },
  'log:proof': {
    input: LogProofRequestSchema,
    output: LogProofResultSchema,
    refusal: WireErrorSchema,
    authenticated: true,
  },
} as const satisfies Record<string, RequestSpec>;

/** Socket.io events the coordinator sends, with their payload schema (no ack). */
export const SERVER_NOTICES = {
  'auth:challenge': AuthChallengeSchema,
  'round:plan': RoundPlanSchema,
  'round:not-selected': NotSelectedSchema,
  'round:closed': RoundClosedSchema,
  'adapter:promoted': AdapterPromotedSchema,
  /** Sent before the server closes a connection, e.g. after a failed challenge. */
  error: WireErrorSchema,
} as const satisfies Record<string, z.ZodType>;

export type ClientRequest = keyof typeof CLIENT_REQUESTS;
export type ServerNotice = keyof typeof SERVER_NOTICES;

/** What a device sends with request `R` (before the coordinator's parse applies defaults). */
export type RequestPayload<R extends ClientRequest> = z.input<(typeof CLIENT_REQUESTS)[R]['input']>;
/** Request `R`'s payload as the coordinator's handler receives it, validated. */
export type ParsedRequest<R extends ClientRequest> = z.output<(typeof CLIENT_REQUESTS)[R]['input']>;
/** The data of an `{ ok: true }` ack to request `R`. */
export type RequestResult<R extends ClientRequest> = z.output<(typeof CLIENT_REQUESTS)[R]['output']>;
/** The `error` of an `{ ok: false }` ack to request `R`. */
export type RequestRefusal<R extends ClientRequest> = z.output<(typeof CLIENT_REQUESTS)[R]['refusal']>;
/** The payload of notice `N`. */
export type NoticePayload<N extends ServerNotice> = z.output<(typeof SERVER_NOTICES)[N]>;

/** The socket.io map of the events a device sends (`Socket<ClientToServerEvents, …>`). */
export type ClientToServerEvents = {
  [R in ClientRequest]: (payload: ParsedRequest<R>, ack: (result: Ack<RequestResult<R>>) => void) => void;
};

/** The socket.io map of the events the coordinator sends: one listener per notice. */
export type ServerToClientEvents = NoticeHandlers;

/**
 * The coordinator's handlers, one per request: each gets the validated payload and resolves with
 * the ack's data (or rejects with a FlotillaError, sent as the ack's error). A table that lacks a
 * request does not compile.
 */
export type RequestHandlers = {
  [R in ClientRequest]: (payload: ParsedRequest<R>) => Promise<RequestResult<R>>;
};

/**
 * The device's listeners, one per notice: each gets the payload validated against the table's
 * schema. A table that lacks a notice does not compile.
 */
export type NoticeHandlers = {
  [N in ServerNotice]: (payload: NoticePayload<N>) => void;
};

/** True when `event` is a request of the table (anything else is answered `unknown event`). */
export function isClientRequest(event: string): event is ClientRequest {
  return Object.hasOwn(CLIENT_REQUESTS, event);
}

/** Every request of the table. */
export const CLIENT_REQUEST_NAMES: readonly ClientRequest[] =
  Object.keys(CLIENT_REQUESTS).filter(isClientRequest);

// The table seen through its derived types: indexed with a generic request `R`, this gives the
// schemas of that very request, so a parse and the handler it feeds stay tied at compile time.
const TYPED_REQUESTS: {
  readonly [R in ClientRequest]: {
    input: z.ZodType<ParsedRequest<R>>;
    output: z.ZodType<RequestResult<R>>;
    refusal: z.ZodType<RequestRefusal<R>>;
  };
} = CLIENT_REQUESTS;

const TYPED_NOTICES: { readonly [N in ServerNotice]: z.ZodType<NoticePayload<N>> } = SERVER_NOTICES;

/** Every notice of the table. */
export const SERVER_NOTICE_NAMES: readonly ServerNotice[] = Object.keys(SERVER_NOTICES).filter(
  (name): name is ServerNotice => Object.hasOwn(SERVER_NOTICES, name),
);

/** Validates the payload of notice `N` (the device's side). */
export function parseNoticePayload<N extends ServerNotice>(
  notice: N,
  payload: unknown,
): z.ZodSafeParseResult<NoticePayload<N>> {
  return TYPED_NOTICES[notice].safeParse(payload);
}

/** Validates the payload of request `R` (the coordinator's side). */
export function parseRequestPayload<R extends ClientRequest>(
  request: R,
  payload: unknown,
): z.ZodSafeParseResult<ParsedRequest<R>> {
  return TYPED_REQUESTS[request].input.safeParse(payload);
}

/** Validates the data of an `{ ok: true }` ack to request `R` (the device's side). */
export function parseRequestResult<R extends ClientRequest>(
  request: R,
  data: unknown,
): z.ZodSafeParseResult<RequestResult<R>> {
  return TYPED_REQUESTS[request].output.safeParse(data);
}

/** Validates the `error` of an `{ ok: false }` ack to request `R` (the device's side). */
export function parseRequestRefusal<R extends ClientRequest>(
  request: R,
  error: unknown,
): z.ZodSafeParseResult<RequestRefusal<R>> {
  return TYPED_REQUESTS[request].refusal.safeParse(error);
}

/** HTTP routes served on the coordinator's port (see docs/protocol.md). */
export const HTTP_ROUTES = {
  blob: (sha256: string) => `/blobs/${sha256}`,
  task: (taskId: string) => `/api/tasks/${taskId}`,
  manifest: (taskId: string, version: number) => `/api/tasks/${taskId}/adapters/${version}/manifest`,
  latestManifest: (taskId: string) => `/api/tasks/${taskId}/adapters/latest/manifest`,
} as const;
