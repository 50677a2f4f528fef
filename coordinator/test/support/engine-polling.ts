// Raw engine.io v4 long-polling requests, as any HTTP client (or attacker) can send them: no
// socket.io-client involved, so every malformed variant reaches the coordinator's HTTP server.
import fc from 'fast-check';
import { rawRequest } from './abuse.js';

/** Path of an engine.io polling request; `undefined` leaves a query parameter out. */
export function pollingPath(query: {
  EIO?: string;
  transport?: string;
  sid?: string;
  extra?: string;
}): string {
  const params = Object.entries({ EIO: query.EIO, transport: query.transport, sid: query.sid })
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([key, value]) => `${key}=${encodeURIComponent(value)}`);
  return `/socket.io/?${[...params, ...(query.extra ? [query.extra] : [])].join('&')}`;
}

/** Opens a polling session (the engine.io handshake) and returns its sid. */
export async function openPollingSession(url: string): Promise<string> {
  const res = await fetch(`${url}${pollingPath({ EIO: '4', transport: 'polling' })}`);
  const text = await res.text();
  if (res.status !== 200 || !text.startsWith('0'))
    throw new Error(`polling handshake failed: ${res.status} ${text}`);
  const { sid } = JSON.parse(text.slice(1)) as { sid: string };
  return sid;
}

/** HTTP status of a raw response, or null when the server closed without an answer. */
export function statusOf(response: string): number | null {
  const match = /^HTTP\/1\.1 (\d{3})/.exec(response);
  return match?.[1] === undefined ? null : Number(match[1]);
}

/** The body of a raw (non-chunked) response. */
export function bodyOf(response: string): string {
  const at = response.indexOf('\r\n\r\n');
  return at < 0 ? '' : response.slice(at + 4);
}

/** How a fuzzed body is delivered: at once, in slow pieces, or cut short (closed or stalled). */
export type Delivery = 'whole' | 'slow' | 'truncated-close' | 'truncated-stall';

export interface PollingFuzzCase {
  method: string;
  EIO: string | undefined;
  transport: string | undefined;
  /**
   * A session opened for this request alone, one of a few shared ones (requests on it overlap
   * and kill it), a made-up sid, or none.
   */
  sid: { fresh: true } | { shared: number } | { literal: string } | undefined;
  extra: string | undefined;
  body: Uint8Array;
  delivery: Delivery;
  contentType: string;
}

const textBytes = (text: string) => new TextEncoder().encode(text);

/** `valid` most of the time (weight 4), else one of `invalid`: most cases reach a live session. */
const mostly = <T>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: invalid });

/**
 * Request variations around the engine.io polling endpoint, from a fixed seed: each field is
 * well formed most of the time, so that most cases get past the handshake checks to a live
 * session's poll and data handlers, and the rest probe those checks.
 */
export function pollingFuzzCases(count: number, seed: number, sharedSessions: number): PollingFuzzCase[] {
  const body = fc.oneof(
    fc.constant(new Uint8Array(0)),
    fc.constantFrom('40', '2', '3', '6', '1', '4', '40{"deviceId":"x"}', '4\u001e40\u001e2').map(textBytes),
    fc.string({ maxLength: 200 }).map(textBytes),
    fc.uint8Array({ maxLength: 2000 }),
    fc.integer({ min: 60_000, max: 200_000 }).map((n) => new Uint8Array(n).fill(0x34)),
  );
  const arbitrary: fc.Arbitrary<PollingFuzzCase> = fc.record({
    method: mostly(fc.constantFrom('POST', 'GET'), fc.constantFrom('PUT', 'OPTIONS', 'DELETE', 'HEAD')),
    EIO: mostly(fc.constant('4'), fc.constantFrom(undefined, '3', '2', '5', '99', '', 'x', '4.0')),
    transport: mostly(
      fc.constant('polling'),
      fc.constantFrom(undefined, 'websocket', 'webtransport', 'nope', ''),
    ),
    sid: mostly<PollingFuzzCase['sid']>(
      fc.constant({ fresh: true }),
      fc.oneof(
        fc.integer({ min: 0, max: sharedSessions - 1 }).map((shared) => ({ shared })),
        fc.string({ maxLength: 30 }).map((literal) => ({ literal })),
        fc.constant(undefined),
      ),
    ),
    extra: mostly(
      fc.constant(undefined),
      fc.constantFrom('t=abc', 'b64=1', 'j=0', 'sid=dup', '%E0%A4%A', 'EIO=3', '&&&', 'x=%00'),
    ),
    body,
    delivery: fc.constantFrom<Delivery>('whole', 'whole', 'slow', 'truncated-close', 'truncated-stall'),
    contentType: mostly(
      fc.constant('text/plain;charset=UTF-8'),
      fc.constantFrom('application/octet-stream', 'text/html'),
    ),
  });
  return fc.sample(arbitrary, { numRuns: count, seed });
}

/** Sends one fuzz case on its own connection; resolves with the status (null: closed unanswered). */
export async function sendPollingCase(
  port: number,
  fuzz: PollingFuzzCase,
  sharedSids: readonly string[],
  options: { pauseMs: number; stallMs: number },
): Promise<number | null> {
  let sid: string | undefined;
  if (fuzz.sid !== undefined && 'fresh' in fuzz.sid)
    sid = await openPollingSession(`http://127.0.0.1:${port}`);
  else if (fuzz.sid !== undefined && 'shared' in fuzz.sid) sid = sharedSids[fuzz.sid.shared] ?? 'gone';
  else sid = fuzz.sid?.literal;
  const path = pollingPath({ EIO: fuzz.EIO, transport: fuzz.transport, sid, extra: fuzz.extra });
  const truncated = fuzz.delivery === 'truncated-close' || fuzz.delivery === 'truncated-stall';
  const sent = truncated ? fuzz.body.subarray(0, Math.floor(fuzz.body.length / 2)) : fuzz.body;
  // Truncated bodies announce more bytes than they send; the others announce exactly theirs.
  const declared = truncated ? fuzz.body.length + 10 : fuzz.body.length;
  const head =
    `${fuzz.method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${fuzz.contentType}\r\n` +
    `Content-Length: ${declared}\r\nConnection: close\r\n\r\n`;
  const third = Math.ceil(sent.length / 3);
  const pieces =
    fuzz.delivery === 'slow'
      ? [sent.subarray(0, third), sent.subarray(third, 2 * third), sent.subarray(2 * third)]
      : [sent];
  const { response } = await rawRequest({
    port,
    head,
    body: pieces,
    pauseMs: options.pauseMs,
    then: fuzz.delivery === 'truncated-stall' ? 'stall' : 'end',
    timeoutMs: options.stallMs,
  });
  return statusOf(response);
}
