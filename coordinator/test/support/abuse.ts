import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import fc from 'fast-check';
import { io, type Socket } from 'socket.io-client';
import { PROTOCOL_VERSION, SIGNING_DOMAINS, signPayload, type AuthChallenge } from '@flotilla/protocol';
import { PATIENCE_MS } from '../../../test-support/patience.js';

/** Resident set size of a process in bytes, from /proc/<pid>/status (Linux). */
export async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match?.[1]) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

// socket.io-client refuses to emit these names itself; everything else goes on the wire.
const RESERVED = new Set([
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'newListener',
  'removeListener',
]);

/** One fuzzed socket message: event name, payload, and maybe a surplus argument. */
export type FuzzMessage = { event: string; payload: unknown; extra: unknown[] };

const nearValidSubmission = fc.record({
  metadata: fc.record(
    {
      protocolVersion: fc.oneof(fc.constant(PROTOCOL_VERSION), fc.string({ maxLength: 8 })),
      taskId: fc.oneof(fc.constant('nope'), fc.string({ maxLength: 70 })),
      roundId: fc.oneof(fc.constant('nope:1'), fc.string({ maxLength: 70 })),
      nonce: fc.stringMatching(/^[0-9a-f]{0,70}$/),
      deviceId: fc.string({ maxLength: 70 }),
      blobDigest: fc.stringMatching(/^[0-9a-f]{60,66}$/),
      blobBytes: fc.oneof(fc.integer(), fc.double()),
      adapterVersion: fc.integer({ min: -2, max: 5 }),
      numExamples: fc.integer({ min: -5, max: 1e9 }),
      reportedNorm: fc.double(),
      clipped: fc.boolean(),
      quantization: fc.constantFrom('none', 'int8', 'fp4'),
      createdAt: fc.integer(),
    },
    { requiredKeys: [] },
  ),
  signature: fc.base64String({ maxLength: 100 }),
});

// Messages that pass the schemas, so the handlers behind them are fuzzed too (unknown tasks,
// rounds that are not open, updates naming other devices, skips of rounds the sender is not in).
const taskId = fc.stringMatching(/^fz-[a-z0-9]{1,12}$/);
const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const signature = fc
  .uint8Array({ minLength: 64, maxLength: 64 })
  .map((b) => Buffer.from(b).toString('base64'));
const telemetry = fc.record({
  trainingMs: fc.nat(),
  steps: fc.nat(),
  examples: fc.nat(),
  stepsPerSecond: fc.nat(),
  bytesUp: fc.nat(),
  bytesDown: fc.nat(),
  estimatedEnergyJ: fc.nat(),
  backend: fc.constantFrom('cpu', 'wasm'),
});
const schemaValid = fc.oneof(
  fc.record({
    event: fc.constant('checkin'),
    payload: fc.record({
      taskId,
      eligibility: fc.record({
        charging: fc.boolean(),
        unmeteredNetwork: fc.boolean(),
        freeStorageBytes: fc.nat(),
        computeClass: fc.constantFrom('low', 'medium', 'high'),
      }),
      budget: fc.record({ maxSeconds: fc.integer({ min: 1, max: 1000 }), maxBytes: fc.integer({ min: 1 }) }),
      adapterVersion: fc.nat(),
    }),
  }),
  fc.record({
    event: fc.constant('update:submit'),
    payload: fc
      .record({ task: taskId, round: fc.integer({ min: 1, max: 9 }), nonce: hex64, digest: hex64 })
      .chain(({ task, round, nonce, digest }) =>
        fc.record({
          metadata: fc.record({
            protocolVersion: fc.constant(PROTOCOL_VERSION),
            taskId: fc.constant(task),
            roundId: fc.constant(`${task}:${round}`),
            nonce: fc.constant(nonce),
            deviceId: fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/),
            blobDigest: fc.constant(digest),
            blobBytes: fc.integer({ min: 1, max: 1e6 }),
            adapterVersion: fc.nat(5),
            numExamples: fc.integer({ min: 1, max: 1000 }),
            reportedNorm: fc.double({ min: 0, max: 10, noNaN: true }),
            clipped: fc.boolean(),
            quantization: fc.constantFrom('none', 'int8'),
            telemetry,
            createdAt: fc.nat(),
          }),
          signature,
        }),
      ),
  }),
  fc.record({
    event: fc.constant('update:skip'),
    payload: fc.record({
      roundId: fc.tuple(taskId, fc.integer({ min: 1, max: 9 })).map(([t, n]) => `${t}:${n}`),
      reason: fc.constantFrom('validation-gate', 'budget-exhausted', 'no-data', 'error'),
      detail: fc.string({ maxLength: 40 }),
    }),
  }),
);

/** Payloads near the real schemas (right keys, wrong values) plus arbitrary JSON-ish values. */
const payload = fc.oneof(
  fc.anything({ maxDepth: 3 }),
  nearValidSubmission,
  fc.record({
    taskId: fc.oneof(fc.constant('nope'), fc.string()),
    eligibility: fc.anything({ maxDepth: 2 }),
    budget: fc.anything({ maxDepth: 2 }),
    adapterVersion: fc.integer(),
  }),
  fc.record({ roundId: fc.string(), reason: fc.string(), detail: fc.oneof(fc.string(), fc.integer()) }),
  fc.record({ signature: fc.oneof(fc.base64String({ maxLength: 100 }), fc.integer()) }),
);

const eventName = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('auth:response', 'checkin', 'update:submit', 'update:skip') },
  { weight: 1, arbitrary: fc.constantFrom('round:plan', 'adapter:promoted', 'no-such-event') },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 30 }) },
);

/** `count` messages from a fixed seed (reproducible). */
export function fuzzMessages(count: number, seed: number): FuzzMessage[] {
  const malformed: fc.Arbitrary<FuzzMessage> = fc.record({
    event: eventName.filter((e) => !RESERVED.has(e)),
    payload,
    extra: fc.oneof(
      { weight: 9, arbitrary: fc.constant<unknown[]>([]) },
      { weight: 1, arbitrary: fc.array<unknown>(fc.jsonValue(), { maxLength: 2 }) },
    ),
  });
  const valid = schemaValid.map((m): FuzzMessage => ({ ...m, extra: [] }));
  const message: fc.Arbitrary<FuzzMessage> = fc.oneof(
    { weight: 3, arbitrary: malformed },
    { weight: 1, arbitrary: valid },
  );
  return fc.sample(message, { numRuns: count, seed });
}

/** A socket that authenticates as `deviceId` with `secretKey` (or never answers when null). */
export function openSocket(
  url: string,
  deviceId: string,
  secretKey: Uint8Array | null,
): { socket: Socket; authenticated: Promise<boolean>; errors: unknown[] } {
  const socket = io(url, {
    auth: { deviceId, protocolVersion: PROTOCOL_VERSION },
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  const errors: unknown[] = [];
  socket.on('error', (e: unknown) => errors.push(e));
  const authenticated = new Promise<boolean>((resolve) => {
    socket.once('connect_error', () => resolve(false));
    socket.once('disconnect', () => resolve(false));
    socket.once('auth:challenge', (challenge: AuthChallenge) => {
      if (secretKey === null) return;
      const signature = signPayload(
        SIGNING_DOMAINS.authChallenge,
        { deviceId, nonce: challenge.nonce, coordinatorKey: challenge.coordinatorKey },
        secretKey,
      );
      socket
        .timeout(PATIENCE_MS)
        .emitWithAck('auth:response', { signature })
        .then(
          (ack: { ok: boolean }) => resolve(ack.ok),
          () => resolve(false),
        );
    });
  });
  return { socket, authenticated, errors };
}

/** Waits until `socket` connected (got its challenge) or failed. */
export function challenged(socket: Socket, timeoutMs = 10_000): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.once('auth:challenge', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.once('connect_error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/**
 * A raw HTTP/1.1 request on its own TCP connection: writes `head` then `body` (an array is sent
 * piece by piece, `pauseMs` apart), then either ends (FIN), or stalls (keeps the socket open
 * without sending more). Resolves with whatever the server answered and how long until it
 * closed the connection.
 */
export function rawRequest(options: {
  port: number;
  head: string;
  body: Uint8Array | Uint8Array[];
  pauseMs?: number;
  then: 'end' | 'stall';
  timeoutMs: number;
}): Promise<{ response: string; closedAfterMs: number | null }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(options.port, '127.0.0.1');
    let response = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ response, closedAfterMs: null });
    }, options.timeoutMs);
    socket.on('data', (chunk: Buffer) => (response += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ response, closedAfterMs: Date.now() - started });
    });
    socket.on('connect', () => {
      void (async () => {
        socket.write(options.head);
        const pieces = Array.isArray(options.body) ? options.body : [options.body];
        for (const [i, piece] of pieces.entries()) {
          if (i > 0) await new Promise((r) => setTimeout(r, options.pauseMs ?? 0));
          if (socket.destroyed) return;
          socket.write(piece);
        }
        if (options.then === 'end') socket.end();
      })();
    });
  });
}
