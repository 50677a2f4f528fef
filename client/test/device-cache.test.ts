import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  SIGNING_DOMAINS,
  encodeFloat32Tensors,
  keyPairFromSeed,
  sha256Hex,
  signPayload,
  toBase64,
  type AdapterManifest,
  type SignedManifest,
} from '@flotilla/protocol';
import { AdapterStore } from '../src/cache/adapter-store.js';
import type { NamedTensors } from '../src/cache/adapter-tensors.js';
import { MemoryBlobCache } from '../src/cache/blob-cache.js';
import { catchUpAdapter, type AdapterFetcher, type LocalAdapter } from '../src/cache/catch-up.js';
import { FileBlobCache } from '../src/cache/file-blob-cache.js';
import type { DeviceLogger } from '../src/device/logger.js';

const TASK = 'chain-task';
const A = 'base_model.model.dense.lora_A.weight';
const B = 'base_model.model.dense.lora_B.weight';
const coordinator = keyPairFromSeed(new Uint8Array(32).fill(7));
const coordinatorKey = toBase64(coordinator.publicKey);
const BASE_DIGEST = 'ab'.repeat(32);

/** Version 0: small integers, exact in f32 and f16. */
function initialTensors(): NamedTensors {
  return new Map([
    [A, { shape: [2, 3], values: Float32Array.from([1, -2, 3, 0, 4, -1]) }],
    [B, { shape: [4, 2], values: Float32Array.from([0, 0, 0, 0, 0, 0, 0, 0]) }],
  ]);
}

/** Delta k at element i is k·(i+1)/8: dyadic, so every partial sum is exact in f16 and f32. */
function deltaTensors(k: number): NamedTensors {
  const make = (n: number) => Float32Array.from({ length: n }, (_, i) => (k * (i + 1)) / 8);
  return new Map([
    [A, { shape: [2, 3], values: make(6) }],
    [B, { shape: [4, 2], values: make(8) }],
  ]);
}

/** Hand-derived reference: v0 + Σ_{k=1..n} k(i+1)/8 = v0 + n(n+1)/2 · (i+1)/8. */
function expectedAt(version: number): Map<string, number[]> {
  const tri = (version * (version + 1)) / 2;
  const init = initialTensors();
  return new Map(
    [...init].map(([name, t]) => [name, Array.from(t.values, (v, i) => v + (tri * (i + 1)) / 8)]),
  );
}

interface Fleet {
  fetcher: AdapterFetcher;
  manifests: Map<number, SignedManifest>;
  blobs: Map<string, Uint8Array>;
  blobRequests: string[];
  deltaDigest: (version: number, precision: 'f32' | 'f16') => string;
  fullDigest: (version: number, precision: 'f32' | 'f16') => string;
}

function buildFleet(versions: number, costs: { fullBytes: number }): Fleet {
  const blobs = new Map<string, Uint8Array>();
  const manifests = new Map<number, SignedManifest>();
  const digests = new Map<string, string>();
  const store = (key: string, bytes: Uint8Array) => {
    const digest = sha256Hex(bytes);
    blobs.set(digest, bytes);
    digests.set(key, digest);
    return { digest, bytes: bytes.byteLength };
  };
  const fromExpected = (version: number): NamedTensors => {
    const shapes = initialTensors();
    return new Map(
      [...expectedAt(version)].map(([name, values]) => [
        name,
        { shape: shapes.get(name)?.shape ?? [], values: Float32Array.from(values) },
      ]),
    );
  };
  for (let v = 1; v <= versions; v++) {
    const full = fromExpected(v);
    const delta = deltaTensors(v);
    const adapter = {
      f32: store(`full:${v}:f32`, encodeFloat32Tensors(full, {}, 'F32')),
      f16: store(`full:${v}:f16`, encodeFloat32Tensors(full, {}, 'F16')),
    };
    const deltaSet = {
      f32: store(`delta:${v}:f32`, encodeFloat32Tensors(delta, {}, 'F32')),
      f16: store(`delta:${v}:f16`, encodeFloat32Tensors(delta, {}, 'F16')),
    };
    const manifest: AdapterManifest = {
      taskId: TASK,
      version: v,
      parentVersion: v - 1,
      roundId: `${TASK}:${v}`,
      baseModelDigest: BASE_DIGEST,
      spec: { mode: 'lora', targetModules: ['dense'], r: 2, alpha: 4, seed: 1 },
      adapter,
      delta: deltaSet,
      adapterConfigDigest: 'cd'.repeat(32),
      aggregation: { strategy: 'fedavg', loraRule: 'fedit', participants: 3 },
      metrics: { accuracy: 0.5 },
      audit: { decision: 'promote', reasons: [] },
      policyDigest: 'ef'.repeat(32),
      privacy: null,
      expectedCost: { fullBytes: costs.fullBytes, deltaBytes: deltaSet.f32.bytes },
      rollbackOf: null,
      createdAt: 1_700_000_000_000 + v,
    };
    manifests.set(v, {
      manifest,
      coordinatorKey,
      signature: signPayload(SIGNING_DOMAINS.manifest, manifest, coordinator.secretKey),
    });
  }
  const blobRequests: string[] = [];
  const fetcher: AdapterFetcher = {
    fetchManifest: (taskId, version) => {
      const signed = manifests.get(version === 'latest' ? versions : version);
      if (taskId !== TASK || !signed) return Promise.reject(new Error('404'));
      // A JSON round trip, as over HTTP: the client sees a fresh untrusted document.
      return Promise.resolve(JSON.parse(JSON.stringify(signed)) as unknown);
    },
    fetchBlob: (digest) => {
      blobRequests.push(digest);
      const bytes = blobs.get(digest);
      return bytes ? Promise.resolve(bytes.slice()) : Promise.reject(new Error('404'));
    },
  };
  const lookup = (key: string) => digests.get(key) ?? '';
  return {
    fetcher,
    manifests,
    blobs,
    blobRequests,
    deltaDigest: (v, p) => lookup(`delta:${v}:${p}`),
    fullDigest: (v, p) => lookup(`full:${v}:${p}`),
  };
}

function recordingLogger(): DeviceLogger & { warnings: Array<Record<string, unknown>> } {
  const warnings: Array<Record<string, unknown>> = [];
  const noop = () => undefined;
  return { debug: noop, info: noop, error: noop, warn: (fields) => warnings.push(fields), warnings };
}

const start = (): LocalAdapter => ({ version: 0, tensors: initialTensors(), manifest: null });

function plain(tensors: NamedTensors): Map<string, number[]> {
  return new Map([...tensors].map(([name, t]) => [name, Array.from(t.values)]));
}

describe('adapter catch-up over a chain of signed deltas', () => {
  it('walks 10 verified deltas and ends at v0 + the sum of deltas', async () => {
    const fleet = buildFleet(10, { fullBytes: 1_000_000 });
    const cache = new MemoryBlobCache();
    const result = await catchUpAdapter({
      taskId: TASK,
      current: start(),
      coordinatorKey,
      fetcher: fleet.fetcher,
      computeClass: 'high',
      cache,
    });
    expect(result.status).toBe('updated');
    expect(result.route).toBe('delta-chain');
    expect(result.precision).toBe('f32');
    expect(result.adapter.version).toBe(10);
    expect(plain(result.adapter.tensors)).toEqual(expectedAt(10));
    const expectedRequests = Array.from({ length: 10 }, (_, i) => fleet.deltaDigest(i + 1, 'f32'));
    expect(fleet.blobRequests).toEqual(expectedRequests);
    const expectedBytes = expectedRequests.reduce((sum, d) => sum + (fleet.blobs.get(d)?.byteLength ?? 0), 0);
    expect(result.bytesDown).toBe(expectedBytes);
    for (const digest of expectedRequests) expect(await cache.has(digest)).toBe(true);
  });

  it('fetches f16 artifacts for a medium device and still lands exactly', async () => {
    const fleet = buildFleet(10, { fullBytes: 1_000_000 });
    const current: LocalAdapter = { version: 4, tensors: new Map(), manifest: null };
    const asAt4 = new Map([...expectedAt(4)].map(([n, v]) => [n, v]));
    const shapes = initialTensors();
    for (const [name, values] of asAt4)
      current.tensors.set(name, { shape: shapes.get(name)?.shape ?? [], values: Float32Array.from(values) });
    const result = await catchUpAdapter({
      taskId: TASK,
      current,
      coordinatorKey,
      fetcher: fleet.fetcher,
      computeClass: 'medium',
    });
    expect(result.route).toBe('delta-chain');
    expect(result.precision).toBe('f16');
    expect(fleet.blobRequests).toEqual([5, 6, 7, 8, 9, 10].map((v) => fleet.deltaDigest(v, 'f16')));
    expect(plain(result.adapter.tensors)).toEqual(expectedAt(10));
  });

  it('jumps to the full adapter when it costs less than the chain', async () => {
    const fleet = buildFleet(10, { fullBytes: 50 });
    const result = await catchUpAdapter({
      taskId: TASK,
      current: start(),
      coordinatorKey,
      fetcher: fleet.fetcher,
      computeClass: 'high',
    });
    expect(result.route).toBe('full');
    expect(fleet.blobRequests).toEqual([fleet.fullDigest(10, 'f32')]);
    expect(plain(result.adapter.tensors)).toEqual(expectedAt(10));
  });

  it('reports up-to-date without downloading anything', async () => {
    const fleet = buildFleet(3, { fullBytes: 1_000_000 });
    const current: LocalAdapter = { version: 3, tensors: initialTensors(), manifest: null };
    const result = await catchUpAdapter({
      taskId: TASK,
      current,
      coordinatorKey,
      fetcher: fleet.fetcher,
      computeClass: 'high',
    });
    expect(result.status).toBe('up-to-date');
    expect(result.adapter).toBe(current);
    expect(fleet.blobRequests).toEqual([]);
  });

  it('refuses a manifest with a changed field, logs why and keeps the current adapter', async () => {
    const fleet = buildFleet(10, { fullBytes: 1_000_000 });
    const signed = fleet.manifests.get(7);
    if (!signed) throw new Error('fixture');
    fleet.manifests.set(7, { ...signed, manifest: { ...signed.manifest, metrics: { accuracy: 0.99 } } });
    const logger = recordingLogger();
    const current = start();
    const result = await catchUpAdapter({
      taskId: TASK,
      current,
      coordinatorKey,
      fetcher: fleet.fetcher,
      computeClass: 'high',
      logger,
    });
    expect(result.status).toBe('refused');
    expect(result.adapter).toBe(current);
    expect(plain(current.tensors)).toEqual(plain(initialTensors()));
    expect(result.reason).toMatch(/^BAD_SIGNATURE/);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]?.code).toBe('BAD_SIGNATURE');
    // Refused while walking the chain back: no delta blob was downloaded.
    expect(fleet.blobRequests).toEqual([]);
  });

  it('refuses a manifest signed by another key even when the signature is valid for it', async () => {
    const fleet = buildFleet(2, { fullBytes: 1_000_000 });
    const impostor = keyPairFromSeed(new Uint8Array(32).fill(9));
    const signed = fleet.manifests.get(2);
    if (!signed) throw new Error('fixture');
    fleet.manifests.set(2, {
      manifest: signed.manifest,
      coordinatorKey: toBase64(impostor.publicKey),
      signature: signPayload(SIGNING_DOMAINS.manifest, signed.manifest, impostor.secretKey),
    });
    const result = await catchUpAdapter({
      taskId: TASK,
      current: start(),
      coordinatorKey,
      fetcher: fleet.fetcher,
      computeClass: 'high',
    });
    expect(result.status).toBe('refused');
    expect(result.reason).toMatch(/^BAD_SIGNATURE/);
  });

  it('refuses a delta blob with one flipped byte, logs why and keeps the current adapter', async () => {
    const fleet = buildFleet(10, { fullBytes: 1_000_000 });
    const digest = fleet.deltaDigest(5, 'f32');
    const bytes = fleet.blobs.get(digest);
    if (!bytes) throw new Error('fixture');
    const tampered = bytes.slice();
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 0x01;
    fleet.blobs.set(digest, tampered);
    const logger = recordingLogger();
    const cache = new MemoryBlobCache();
    const current = start();
    const result = await catchUpAdapter({
      taskId: TASK,
      current,
      coordinatorKey,
      fetcher: fleet.fetcher,
      computeClass: 'high',
      cache,
      logger,
    });
    expect(result.status).toBe('refused');
    expect(result.adapter).toBe(current);
    expect(result.reason).toMatch(/^DIGEST_MISMATCH/);
    expect(logger.warnings[0]?.code).toBe('DIGEST_MISMATCH');
    expect(await cache.has(digest)).toBe(false);
    expect(plain(current.tensors)).toEqual(plain(initialTensors()));
  });
});

describe('adapter catch-up tamper detection (property)', () => {
  it('refuses a chain in which any single bit of any delta blob was flipped', async () => {
    const fleet = buildFleet(4, { fullBytes: 1_000_000 });
    const digests = [1, 2, 3, 4].map((v) => fleet.deltaDigest(v, 'f32'));
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: digests.length - 1 }),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        async (which, offset, bit) => {
          const digest = digests[which] ?? '';
          const original = fleet.blobs.get(digest);
          if (!original) throw new Error('fixture');
          const tampered = original.slice();
          const at = offset % tampered.length;
          tampered[at] = (tampered[at] ?? 0) ^ (1 << bit);
          fleet.blobs.set(digest, tampered);
          try {
            const current = start();
            const result = await catchUpAdapter({
              taskId: TASK,
              current,
              coordinatorKey,
              fetcher: fleet.fetcher,
              computeClass: 'high',
            });
            expect(result.status).toBe('refused');
            expect(result.adapter).toBe(current);
          } finally {
            fleet.blobs.set(digest, original);
          }
        },
      ),
      { numRuns: 30 },
    );
  });
});

describe('AdapterStore', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  it('swaps atomically, keeps the previous adapter for rollback and survives a restart on disk', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-cache-'));
    dirs.push(dir);
    const store = new AdapterStore({ cache: new FileBlobCache({ dir }), taskId: TASK });
    await store.swap({ version: 1, tensors: initialTensors(), manifest: null });
    const v2: LocalAdapter = { version: 2, tensors: deltaTensors(2), manifest: null };
    await store.swap(v2);
    expect(store.current.version).toBe(2);
    expect(store.previous?.version).toBe(1);

    const reopened = new AdapterStore({ cache: new FileBlobCache({ dir }), taskId: TASK });
    const loaded = await reopened.load();
    expect(loaded.version).toBe(2);
    expect(plain(loaded.tensors)).toEqual(plain(deltaTensors(2)));
    expect(await reopened.rollback()).toBe(true);
    expect(reopened.current.version).toBe(1);
    expect(plain(reopened.current.tensors)).toEqual(plain(initialTensors()));
  });

  it('drops a saved state whose blob was damaged on disk instead of loading it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-cache-'));
    dirs.push(dir);
    const cache = new FileBlobCache({ dir });
    const store = new AdapterStore({ cache, taskId: TASK });
    await store.swap({ version: 3, tensors: initialTensors(), manifest: null });
    const digest = sha256Hex(encodeFloat32Tensors(initialTensors()));
    await writeFile(join(dir, 'blobs', digest), new Uint8Array([1, 2, 3]));
    const reopened = new AdapterStore({ cache: new FileBlobCache({ dir }), taskId: TASK });
    expect((await reopened.load()).version).toBe(0);
  });
});
