import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  CLIENT_REQUESTS,
  CLIENT_REQUEST_NAMES,
  SERVER_NOTICES,
  isClientRequest,
  parseRequestPayload,
  parseRequestResult,
  type ClientToServerEvents,
  type RequestHandlers,
  type RequestPayload,
  type RequestResult,
  type ServerToClientEvents,
} from './events.js';
import type { AuthResult } from './messages/handshake.js';
import type { CheckIn, CheckInResult } from './messages/checkin.js';
import type { RoundPlan } from './messages/round-plan.js';
import type { UpdateReceipt, UpdateSkip, UpdateSubmission } from './messages/update.js';
import type { Ack } from './messages/primitives.js';

describe('socket message table', () => {
  it('lists the five device requests and the six coordinator notices of docs/protocol.md', () => {
    expect([...CLIENT_REQUEST_NAMES].sort()).toEqual([
      'auth:response',
      'checkin',
      'log:proof',
      'update:skip',
      'update:submit',
    ]);
    expect(Object.keys(SERVER_NOTICES).sort()).toEqual([
      'adapter:promoted',
      'auth:challenge',
      'error',
      'round:closed',
      'round:not-selected',
      'round:plan',
    ]);
    // Only the answer to the challenge may come before a session.
    expect(CLIENT_REQUEST_NAMES.filter((name) => !CLIENT_REQUESTS[name].authenticated)).toEqual([
      'auth:response',
    ]);
  });

  it('tells requests from other event names', () => {
    expect(isClientRequest('update:submit')).toBe(true);
    expect(isClientRequest('round:plan')).toBe(false);
    expect(isClientRequest('toString')).toBe(false);
  });

  it("validates a request's payload and its ack data with that request's schemas", () => {
    const skip = { roundId: 't:1', reason: 'no-data', detail: '' };
    expect(parseRequestPayload('update:skip', skip).success).toBe(true);
    expect(parseRequestPayload('update:skip', { ...skip, reason: 'bored' }).success).toBe(false);
    expect(parseRequestPayload('checkin', skip).success).toBe(false);
    expect(parseRequestResult('update:skip', { recorded: true }).success).toBe(true);
    expect(parseRequestResult('update:skip', { recorded: false }).success).toBe(false);
  });

  it('derives the socket.io event maps, the handler table and the call types from the table', () => {
    expectTypeOf<RequestPayload<'checkin'>>().toExtend<object>();
    expectTypeOf<CheckIn>().toExtend<RequestPayload<'checkin'>>();
    expectTypeOf<RequestResult<'auth:response'>>().toEqualTypeOf<AuthResult>();
    expectTypeOf<RequestResult<'checkin'>>().toEqualTypeOf<CheckInResult>();
    expectTypeOf<RequestResult<'update:submit'>>().toEqualTypeOf<UpdateReceipt>();
    expectTypeOf<RequestResult<'update:skip'>>().toEqualTypeOf<{ recorded: true }>();
    expectTypeOf<ClientToServerEvents['update:submit']>().toEqualTypeOf<
      (payload: UpdateSubmission, ack: (result: Ack<UpdateReceipt>) => void) => void
    >();
    expectTypeOf<ServerToClientEvents['round:plan']>().toEqualTypeOf<(payload: RoundPlan) => void>();
    expectTypeOf<RequestHandlers['update:skip']>().toEqualTypeOf<
      (payload: UpdateSkip) => Promise<{ recorded: true }>
    >();
  });

  it('does not compile a handler table that lacks a request or answers one with the wrong data', () => {
    // Never called: `npm run typecheck` checks these lines.
    const tables = (complete: RequestHandlers) => {
      // @ts-expect-error 'update:skip' has no handler
      const missing: RequestHandlers = {
        'auth:response': complete['auth:response'],
        checkin: complete.checkin,
        'update:submit': complete['update:submit'],
      };
      const wrongData: RequestHandlers = {
        ...complete,
        // @ts-expect-error the ack data of update:skip is { recorded: true }
        'update:skip': () => Promise.resolve({ recorded: false }),
      };
      return [missing, wrongData];
    };
    expect(tables).toBeTypeOf('function');
  });
});
