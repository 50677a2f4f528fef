import { describe, expect, it } from 'vitest';
import {
  SIGNING_DOMAINS,
  decodeDeltaFile,
  keyPairFromSeed,
  sha256Hex,
  toBase64,
  verifyPayload,
  type RoundPlan,
} from '@flotilla/protocol';
import { CoordinatorHttp, HttpStatusError } from '../src/device/http-client.js';
import { buildUpdate } from '../src/device/update-builder.js';

const device = keyPairFromSeed(new Uint8Array(32).fill(3));
const A = 'base_model.model.dense.lora_A.weight';
const B = 'base_model.model.dense.lora_B.weight';

function plan(overrides: Partial<RoundPlan> = {}): RoundPlan {
  return {
    roundId: 'task-a:3',
    taskId: 'task-a',
    roundNumber: 3,
    nonce: '11'.repeat(32),
    baseModelDigest: '22'.repeat(32),
    adapter: {
      spec: { mode: 'lora', targetModules: ['dense'], r: 1, alpha: 1, seed: 0 },
      version: 2,
      digest: '33'.repeat(32),
    },
    training: { epochs: 1, batchSize: 4, learningRate: 0.1, fedProxMu: 0, optimizer: 'sgd' },
    budget: { maxSteps: 10, maxSeconds: 10, maxUploadBytes: 100_000 },
    clipNorm: 1,
    quantization: 'none',
    validationTolerance: 0.05,
    deadline: Date.now() + 60_000,
    ...overrides,
  };
}

/** ‖(3, 4, 0, 0)‖ = 5 (a 3-4-5 triangle), split across two tensors. */
const delta = () =>
  new Map([
    [A, { shape: [1, 2], values: Float32Array.from([3, 4]) }],
    [B, { shape: [2, 1], values: Float32Array.from([0, 0]) }],
  ]);

const telemetry = {
  trainingMs: 12,
  steps: 3,
  examples: 40,
  stepsPerSecond: 250,
  bytesDown: 0,
  estimatedEnergyJ: 0.06,
  backend: 'cpu',
};

describe('buildUpdate', () => {
  it('clips a norm-5 delta to the bound 1: (3,4)/5 = (0.6, 0.8), and signs what it sends', () => {
    const built = buildUpdate({
      plan: plan(),
      deviceId: 'dev-1',
      secretKey: device.secretKey,
      delta: delta(),
      numExamples: 40,
      telemetry,
    });
    const { metadata, signature } = built.submission;
    expect(built.rawNorm).toBe(5);
    expect(metadata.clipped).toBe(true);
    expect(metadata.reportedNorm).toBeCloseTo(1, 6);
    expect(metadata.blobDigest).toBe(sha256Hex(built.blob));
    expect(metadata.blobBytes).toBe(built.blob.byteLength);
    expect(metadata.telemetry.bytesUp).toBe(built.blob.byteLength);
    expect(metadata).toMatchObject({
      roundId: 'task-a:3',
      nonce: '11'.repeat(32),
      adapterVersion: 2,
      numExamples: 40,
      quantization: 'none',
    });
    expect(verifyPayload(SIGNING_DOMAINS.update, metadata, signature, toBase64(device.publicKey))).toBe(true);
    const decoded = decodeDeltaFile(built.blob).tensors;
    expect(Array.from(decoded.get(A)?.values ?? [])).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    expect(Array.from(decoded.get(B)?.values ?? [])).toEqual([0, 0]);
  });

  it('leaves a delta inside the bound untouched', () => {
    const built = buildUpdate({
      plan: plan({ clipNorm: 10 }),
      deviceId: 'dev-1',
      secretKey: device.secretKey,
      delta: delta(),
      numExamples: 1,
      telemetry,
    });
    expect(built.submission.metadata.clipped).toBe(false);
    expect(built.submission.metadata.reportedNorm).toBe(5);
  });

  it('sends int8 with per-tensor scales whose dequantised norm stays within the bound', () => {
    const built = buildUpdate({
      plan: plan({ quantization: 'int8' }),
      deviceId: 'dev-1',
      secretKey: device.secretKey,
      delta: delta(),
      numExamples: 1,
      telemetry,
    });
    const decoded = decodeDeltaFile(built.blob);
    expect(decoded.quantization).toBe('int8');
    let sum = 0;
    for (const t of decoded.tensors.values()) for (const v of t.values) sum += v * v;
    expect(Math.sqrt(sum)).toBeLessThanOrEqual(1);
    // The largest entry maps to q = 127 exactly (scale = max/127), so 0.8 survives to f32 rounding.
    expect(decoded.tensors.get(A)?.values[1]).toBeCloseTo(0.8, 5);
    expect(built.submission.metadata.quantization).toBe('int8');
  });

  it('with clipping off (attacker simulation) sends the raw delta', () => {
    const built = buildUpdate({
      plan: plan(),
      deviceId: 'dev-1',
      secretKey: device.secretKey,
      delta: delta(),
      numExamples: 1,
      telemetry,
      clipping: 'off',
    });
    expect(built.submission.metadata.reportedNorm).toBe(5);
    expect(built.submission.metadata.clipped).toBe(false);
  });

  it('refuses non-finite deltas and uploads larger than the plan allows', () => {
    const bad = delta();
    bad.set(B, { shape: [2, 1], values: Float32Array.from([Number.NaN, 0]) });
    expect(() =>
      buildUpdate({
        plan: plan(),
        deviceId: 'd',
        secretKey: device.secretKey,
        delta: bad,
        numExamples: 1,
        telemetry,
      }),
    ).toThrow(expect.objectContaining({ code: 'NON_FINITE' }));
    const tiny = plan({ budget: { maxSteps: 1, maxSeconds: 1, maxUploadBytes: 10 } });
    expect(() =>
      buildUpdate({
        plan: tiny,
        deviceId: 'd',
        secretKey: device.secretKey,
        delta: delta(),
        numExamples: 1,
        telemetry,
      }),
    ).toThrow(expect.objectContaining({ code: 'BLOB_TOO_LARGE' }));
  });
});

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

/** A client whose coordinator always answers `status` with `code`; counts the requests. */
function refusingHttp(status: number, code: string) {
  const counter = { calls: 0 };
  const http = new CoordinatorHttp({
    url: 'http://127.0.0.1:1',
    sessionToken: () => 'tok',
    retry: { baseDelayMs: 1 },
    fetch: () => {
      counter.calls++;
      return Promise.resolve(json(status, { error: { code, message: 'refused' } }));
    },
  });
  return { http, counter };
}

describe('CoordinatorHttp blob upload', () => {
  const digest = sha256Hex(new Uint8Array([1, 2, 3]));

  it('retries network errors and 5xx with backoff, sending the bearer token', async () => {
    const calls: Array<{ url: string; auth: string | null }> = [];
    const answers: Array<() => Promise<Response>> = [
      () => Promise.reject(new TypeError('fetch failed')),
      () => Promise.resolve(json(503, { error: { code: 'INTERNAL', message: 'busy' } })),
      () => Promise.resolve(json(201, { digest, stored: true })),
    ];
    const http = new CoordinatorHttp({
      url: 'http://127.0.0.1:1/',
      sessionToken: () => 'tok-123',
      retry: { baseDelayMs: 1, maxDelayMs: 2 },
      fetch: (url, init) => {
        calls.push({ url, auth: new Headers(init?.headers).get('authorization') });
        const next = answers.shift();
        return next ? next() : Promise.reject(new Error('too many calls'));
      },
    });
    await http.uploadBlob(digest, new Uint8Array([1, 2, 3]));
    expect(calls).toHaveLength(3);
    expect(calls[0]).toEqual({ url: `http://127.0.0.1:1/blobs/${digest}`, auth: 'Bearer tok-123' });
  });

  it('does not retry a 4xx and surfaces the coordinator error code', async () => {
    const { http, counter } = refusingHttp(413, 'BLOB_TOO_LARGE');
    const error = await http.uploadBlob(digest, new Uint8Array([1, 2, 3])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpStatusError);
    expect(error).toMatchObject({ status: 413, code: 'BLOB_TOO_LARGE' });
    expect(counter.calls).toBe(1);
  });
});

describe('CoordinatorHttp blob download', () => {
  const digest = sha256Hex(new Uint8Array([4, 5, 6]));

  it('authenticates with the session token and retries 429 RATE_LIMITED and a 401 of a renewed session', async () => {
    const sessions = ['old-token', 'new-token'];
    const seen: Array<string | null> = [];
    const answers: Array<() => Response> = [
      () => json(429, { error: { code: 'RATE_LIMITED', message: 'too many blob transfers' } }),
      () => {
        sessions.shift();
        return json(401, { error: { code: 'UNAUTHORIZED', message: 'session expired' } });
      },
      () => new Response(new Uint8Array([4, 5, 6]), { status: 200 }),
    ];
    const http = new CoordinatorHttp({
      url: 'http://127.0.0.1:1',
      sessionToken: () => sessions[0] ?? null,
      retry: { baseDelayMs: 1, maxDelayMs: 2 },
      fetch: (_url, init) => {
        seen.push(new Headers(init?.headers).get('authorization'));
        const next = answers.shift();
        return next ? Promise.resolve(next()) : Promise.reject(new Error('too many calls'));
      },
    });
    expect(await http.fetchBlob(digest)).toEqual(new Uint8Array([4, 5, 6]));
    expect(seen).toEqual(['Bearer old-token', 'Bearer old-token', 'Bearer new-token']);
  });

  it('does not retry 403 FORBIDDEN or 429 QUOTA_EXCEEDED', async () => {
    for (const [status, code] of [
      [403, 'FORBIDDEN'],
      [429, 'QUOTA_EXCEEDED'],
    ] as const) {
      const { http, counter } = refusingHttp(status, code);
      const error = await http.fetchBlob(digest).catch((e: unknown) => e);
      expect(error).toMatchObject({ status, code });
      expect(counter.calls).toBe(1);
    }
  });
});
