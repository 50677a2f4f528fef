import { EventEmitter } from 'node:events';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  SERVER_NOTICES,
  type NoticeHandlers,
  type RoundClosed,
  type RoundPlan,
  type ServerNotice,
} from '@flotilla/protocol';
import { listenToNotices } from './notice-listeners.js';

/** Handlers that record what each notice delivered. */
function recordingHandlers(heard: Array<[ServerNotice, unknown]>): NoticeHandlers {
  const record = (notice: ServerNotice) => (payload: unknown) => {
    heard.push([notice, payload]);
  };
  return {
    'auth:challenge': record('auth:challenge'),
    'round:plan': record('round:plan'),
    'round:not-selected': record('round:not-selected'),
    'round:closed': record('round:closed'),
    'adapter:promoted': record('adapter:promoted'),
    error: record('error'),
  };
}

describe('listening to the coordinator notices of the message table', () => {
  it('listens to every notice of SERVER_NOTICES, and to nothing else', () => {
    const socket = new EventEmitter();
    listenToNotices(socket, recordingHandlers([]), () => undefined);
    expect(socket.eventNames().map(String).sort()).toEqual(Object.keys(SERVER_NOTICES).sort());
  });

  it("hands a handler the payload its notice's schema accepted, and a malformed one to onMalformed", () => {
    const socket = new EventEmitter();
    const heard: Array<[ServerNotice, unknown]> = [];
    const malformed: Array<[ServerNotice, string]> = [];
    listenToNotices(socket, recordingHandlers(heard), (notice, issue) => malformed.push([notice, issue]));
    const closed: RoundClosed = { taskId: 't', roundId: 't:1', state: 'ABANDONED' };
    socket.emit('round:closed', closed);
    socket.emit('round:closed', { ...closed, state: 'DANCING' });
    socket.emit('round:not-selected', { taskId: 't' });
    socket.emit('error', { code: 'BAD_REQUEST', message: 'bad challenge answer' });
    expect(heard).toEqual([
      ['round:closed', closed],
      ['error', { code: 'BAD_REQUEST', message: 'bad challenge answer' }],
    ]);
    expect(malformed.map(([notice]) => notice)).toEqual(['round:closed', 'round:not-selected']);
    expect(malformed.every(([, issue]) => issue.length > 0)).toBe(true);
  });

  it('types each handler with its notice payload, and does not compile a table that lacks a notice', () => {
    expectTypeOf<Parameters<NoticeHandlers['round:plan']>[0]>().toEqualTypeOf<RoundPlan>();
    // Never called: `npm run typecheck` checks these lines.
    const tables = (complete: NoticeHandlers) => {
      // @ts-expect-error 'adapter:promoted' has no handler
      const missing: NoticeHandlers = {
        'auth:challenge': complete['auth:challenge'],
        'round:plan': complete['round:plan'],
        'round:not-selected': complete['round:not-selected'],
        'round:closed': complete['round:closed'],
        error: complete.error,
      };
      const wrongPayload: NoticeHandlers = {
        ...complete,
        // @ts-expect-error a plan is no RoundClosed
        'round:plan': (plan: RoundClosed) => plan.state,
      };
      return [missing, wrongPayload];
    };
    expect(tables).toBeTypeOf('function');
  });
});
