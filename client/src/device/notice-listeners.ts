import {
  SERVER_NOTICE_NAMES,
  parseNoticePayload,
  type NoticeHandlers,
  type ServerNotice,
} from '@flotilla/protocol';

/** The part of a socket.io client socket that listening needs. */
export interface NoticeSource {
  on(event: string, listener: (payload: unknown) => void): unknown;
}

/**
 * Listens to every notice of protocol's table (events.ts) on `socket`, each with its handler from
 * `handlers`: a payload reaches its handler only once the table's schema for that notice accepts
 * it; a malformed one goes to `onMalformed` instead.
 */
export function listenToNotices(
  socket: NoticeSource,
  handlers: NoticeHandlers,
  onMalformed: (notice: ServerNotice, issue: string) => void,
): void {
  for (const notice of SERVER_NOTICE_NAMES) listen(socket, notice, handlers[notice], onMalformed);
}

function listen<N extends ServerNotice>(
  socket: NoticeSource,
  notice: N,
  handler: NoticeHandlers[N],
  onMalformed: (notice: ServerNotice, issue: string) => void,
): void {
  socket.on(notice, (payload) => {
    const parsed = parseNoticePayload(notice, payload);
    if (parsed.success) handler(parsed.data);
    else onMalformed(notice, parsed.error.issues[0]?.message ?? 'invalid payload');
  });
}
