import nacl from 'tweetnacl';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSafetensors, loraTensorNames, sha256Hex, type RoundPlan } from '@flotilla/protocol';
import { publishRoundOutcome } from '../src/shared/round-outcomes.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { testRedisUrl } from '../../test-support/redis.js';
import {
  connectFleet,
  createTestTask,
  loraDelta,
  MODULE,
  RANK,
  SHAPES,
  TestDevice,
  useTestFleet,
  waitFor,
} from './support/index.js';
import { PATIENCE_MS, WAITED_DEADLINE_MS } from '../../test-support/patience.js';

function errorCode(ack: { ok: boolean; error?: { code: string } }): string | undefined {
  return ack.ok ? 'OK' : ack.error?.code;
}

/** An int8 LoRA delta: every value q·scale with q = 100; dequantised norm = 100·scale·√14. */
function int8Delta(scale: number): Uint8Array {
  const names = loraTensorNames(MODULE);
  const a = new Uint8Array(RANK * SHAPES.in).fill(100);
  const b = new Uint8Array(SHAPES.out * RANK).fill(100);
  return encodeSafetensors({
    tensors: new Map([
      [names.a, { dtype: 'I8' as const, shape: [RANK, SHAPES.in], data: a }],
      [names.b, { dtype: 'I8' as const, shape: [SHAPES.out, RANK], data: b }],
    ]),
    metadata: { [`scale:${names.a}`]: String(scale), [`scale:${names.b}`]: String(scale) },
  });
}

describe('refusals, each with its reason code, while honest devices finish the round', () => {
  // One device tries a dozen malformed deltas in one round: a larger upload quota than the
  // default 4 (the quota has its own test, blob-quota.test.ts). The refusals below take their time
  // on a loaded machine: this round's deadline only bounds them. The close at a deadline is the
  // last test's, in a task of its own.
  const fleet = useTestFleet({
    coordinator: { maxUploadsPerRound: 20 },
    task: { rounds: { goalCount: 4, overSelection: 1, minReports: 3, reportingDeadlineMs: 300_000 } },
    devices: 4,
    label: 'honest',
  });
  let honest: TestDevice[];
  let plan: RoundPlan;
  const redis = new Redis(redisOptionsFromUrl(testRedisUrl()));

  beforeAll(async () => {
    honest = fleet.devices;
    await Promise.all(honest.map((d) => d.checkIn('test-task')));
    const plans = await Promise.all(honest.map((d) => d.waitForPlan()));
    plan = plans[0] as RoundPlan;
  });
  afterAll(() => {
    redis.disconnect();
  });

  it('refuses an unenrolled device, a bad challenge signature and a version mismatch at the handshake', async () => {
    const stranger = new TestDevice(fleet.tc.coordinator.url, 'stranger');
    expect(errorCode(await stranger.connect())).toBe('UNKNOWN_DEVICE');
    stranger.disconnect();

    const impostor = new TestDevice(fleet.tc.coordinator.url, 'impostor');
    await fleet.tc.coordinator.devices.registerDevice({
      deviceId: 'impostor',
      publicKey: impostor.publicKey,
    });
    const ack = await impostor.connect({ signWith: nacl.sign.keyPair().secretKey });
    expect(errorCode(ack)).toBe('BAD_SIGNATURE');
    await waitFor(() => impostor.socket?.connected === false, PATIENCE_MS, 'server closes the connection');
    expect(impostor.errors).toEqual([
      { code: 'BAD_SIGNATURE', message: 'challenge signature does not verify' },
    ]);

    const revoked = new TestDevice(fleet.tc.coordinator.url, 'revoked');
    await fleet.tc.coordinator.devices.registerDevice({ deviceId: 'revoked', publicKey: revoked.publicKey });
    await fleet.tc.coordinator.devices.revokeDevice('revoked');
    expect(errorCode(await revoked.connect())).toBe('REVOKED_DEVICE');
    revoked.disconnect();
  });

  it('refuses uploads with a wrong digest or over the size cap, and without a token', async () => {
    const device = honest[0] as TestDevice;
    const bytes = loraDelta(0.3);
    const wrong = await device.upload(bytes, sha256Hex(new Uint8Array([1, 2, 3])));
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe('DIGEST_MISMATCH');

    const big = new Uint8Array(5000).fill(7);
    const tooBig = await device.upload(big);
    expect(tooBig.status).toBe(413);
    expect(((await tooBig.json()) as { error: { code: string } }).error.code).toBe('BLOB_TOO_LARGE');
    expect(await fleet.tc.coordinator.blobs.has(sha256Hex(big))).toBe(false);

    const anonymous = await fetch(`${fleet.tc.coordinator.url}/blobs/${sha256Hex(bytes)}`, {
      method: 'PUT',
      body: Buffer.from(bytes),
    });
    expect(anonymous.status).toBe(401);
  });

  // One device's malformed updates, one kind per `it`, in order; then the honest ones are accepted.
  describe('updates', () => {
    const good = loraDelta(0.4);
    const names = loraTensorNames(MODULE);
    const device = (i: number) => honest[i] as TestDevice;
    beforeAll(async () => {
      await device(0).upload(good);
    });

    it('refuses one signed with a key that is not the enrolled one', async () => {
      const h0 = device(0);
      // Forged: signed with a key that is not the enrolled one.
      expect(errorCode(await h0.submit(h0.metadata(plan, good), nacl.sign.keyPair().secretKey))).toBe(
        'BAD_SIGNATURE',
      );
    });

    it('refuses one naming another device', async () => {
      const [h0, h1] = [device(0), device(1)];
      // Another device's name in the metadata.
      expect(
        errorCode(await h1.submit(h1.metadata(plan, good, { deviceId: h0.deviceId }), h1.keys.secretKey)),
      ).toBe('FORBIDDEN');
    });

    it('refuses f32 and int8 deltas over the clip bound, whatever norm the device reports', async () => {
      const h0 = device(0);
      // Norm over the clip bound 1 (recomputed from the blob, whatever the device reports).
      expect(errorCode(await h0.report(plan, loraDelta(1.5), { reportedNorm: 0.9 }))).toBe('NORM_EXCEEDED');
      // int8: 100 · 0.001 · √14 ≈ 0.374 is fine; 100 · 0.01 · √14 ≈ 3.74 is not.
      expect(errorCode(await h0.report(plan, int8Delta(0.01), { quantization: 'int8' }))).toBe(
        'NORM_EXCEEDED',
      );
    });

    it('refuses non-finite values', async () => {
      const h0 = device(0);
      const nanBytes = encodeSafetensors({
        tensors: new Map([
          [
            names.a,
            {
              dtype: 'F32' as const,
              shape: [RANK, SHAPES.in],
              data: new Uint8Array(new Float32Array(RANK * SHAPES.in).fill(Number.NaN).buffer),
            },
          ],
          [
            names.b,
            {
              dtype: 'F32' as const,
              shape: [SHAPES.out, RANK],
              data: new Uint8Array(new Float32Array(SHAPES.out * RANK).buffer),
            },
          ],
        ]),
      });
      expect(errorCode(await h0.report(plan, nanBytes))).toBe('NON_FINITE');
    });

    it('refuses a tensor of the wrong shape', async () => {
      const h0 = device(0);
      const wrongShape = encodeSafetensors({
        tensors: new Map([
          [
            names.a,
            { dtype: 'F32' as const, shape: [SHAPES.in, RANK], data: new Uint8Array(4 * RANK * SHAPES.in) },
          ],
          [
            names.b,
            { dtype: 'F32' as const, shape: [SHAPES.out, RANK], data: new Uint8Array(4 * SHAPES.out * RANK) },
          ],
        ]),
      });
      expect(errorCode(await h0.report(plan, wrongShape))).toBe('SHAPE_MISMATCH');
    });

    it('refuses a module the task does not allow, and a file that is not safetensors', async () => {
      const h0 = device(0);
      const otherModule = loraDelta(
        0.2,
        new Map([
          ['base_model.model.secret.lora_A.weight', { shape: [RANK, 4], values: new Float32Array(8) }],
        ]),
      );
      expect(errorCode(await h0.report(plan, otherModule))).toBe('MODULE_NOT_ALLOWED');
      expect(errorCode(await h0.report(plan, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])))).toBe(
        'CORRUPT_FILE',
      );
    });

    it('refuses a signed digest of a blob never uploaded, and a nonce not of its plan', async () => {
      const h0 = device(0);
      // Signed digest of a blob never uploaded.
      expect(
        errorCode(await h0.submit(h0.metadata(plan, good, { blobDigest: sha256Hex(new Uint8Array([9])) }))),
      ).toBe('BLOB_MISSING');
      expect(errorCode(await h0.submit(h0.metadata(plan, good, { nonce: 'b'.repeat(64) })))).toBe(
        'NONCE_MISMATCH',
      );
    });

    it('accepts honest updates: plain, int8 (with its dequantised norm) and one exactly at the bound', async () => {
      const [h0, h1, h2] = [device(0), device(1), device(2)];
      // Honest updates: plain, int8, and one exactly at the bound (f32 rounding within the 1e-6 tolerance).
      expect(errorCode(await h0.report(plan, good))).toBe('OK');
      const q = await h1.report(plan, int8Delta(0.001), { quantization: 'int8' });
      expect(errorCode(q)).toBe('OK');
      if (q.ok) expect(q.data.norm).toBeCloseTo(100 * 0.001 * Math.sqrt(14), 6);
      expect(errorCode(await h2.report(plan, loraDelta(1)))).toBe('OK');
    });

    it('refuses the replay of an accepted update', async () => {
      const h0 = device(0);
      // Replay of an accepted update (same nonce, same device).
      expect(errorCode(await h0.submit(h0.metadata(plan, good)))).toBe('DUPLICATE_UPDATE');
    });
  });

  it('refuses a device that was not selected', async () => {
    const late = (await connectFleet(fleet.tc.coordinator, 1, 'latecomer'))[0] as TestDevice;
    const checkin = await late.checkIn('test-task');
    expect(checkin.ok && checkin.data).toMatchObject({ status: 'retry', reason: 'round-full' });
    const bytes = loraDelta(0.1);
    const upload = await late.upload(bytes);
    expect(upload.status).toBe(403);
    expect(((await upload.json()) as { error: { code: string } }).error.code).toBe('NOT_SELECTED');
    expect(errorCode(await late.submit(late.metadata(plan, bytes)))).toBe('NOT_SELECTED');
    late.disconnect();
  });

  it('closes at the deadline with quorum, refuses the late update, and refuses replays in the next round', async () => {
    const [h0, h1, h2, h3] = honest as [TestDevice, TestDevice, TestDevice, TestDevice];
    // The first task's round ends (h3 gives up on it): from now on no round selects h3 but this one.
    expect(
      errorCode(await h3.emit('update:skip', { roundId: plan.roundId, reason: 'error', detail: 'gave up' })),
    ).toBe('OK');
    // Three of four report within the deadline; the fourth is late.
    await createTestTask(fleet.tc.coordinator, {
      taskId: 'deadline-task',
      rounds: { goalCount: 4, overSelection: 1, minReports: 3, reportingDeadlineMs: WAITED_DEADLINE_MS },
    });
    await Promise.all(honest.map((d) => d.checkIn('deadline-task')));
    const deadlinePlan = (
      await Promise.all(honest.map((d) => d.waitForPlan('deadline-task:1')))
    )[0] as RoundPlan;
    const reports = await Promise.all(
      [h0, h1, h2].map((d, i) => d.report(deadlinePlan, loraDelta(0.1 * (i + 1)))),
    );
    expect(reports.map(errorCode)).toEqual(['OK', 'OK', 'OK']);
    await fleet.roundIn(deadlinePlan.roundId, 'AGGREGATING');
    // Too late to upload (no round is reporting), and too late to submit.
    const lateBlob = loraDelta(0.2);
    expect((await h3.upload(lateBlob)).status).toBe(403);
    expect(errorCode(await h3.submit(h3.metadata(deadlinePlan, lateBlob)))).toBe('ROUND_CLOSED');
    const round = await fleet.tc.coordinator.rounds.get(deadlinePlan.roundId);
    expect(round?.acceptedCount).toBe(3);

    await publishRoundOutcome(redis, fleet.tc.coordinator.prefix, {
      taskId: 'deadline-task',
      roundId: deadlinePlan.roundId,
      decision: 'REJECTED',
      version: null,
      manifestDigest: null,
      reasons: ['audit: too many outliers'],
    });
    await waitFor(
      async () => (await fleet.tc.coordinator.rounds.current('deadline-task'))?.roundId === 'deadline-task:2',
      PATIENCE_MS,
      'round 2',
    );
    expect((await fleet.tc.coordinator.rounds.get(deadlinePlan.roundId))?.state).toBe('REJECTED');
    const old = loraDelta(0.1);
    // Round 1's update replayed into round 2: stale round id, or round 2's id with round 1's nonce.
    expect(errorCode(await h0.submit(h0.metadata(deadlinePlan, old)))).toBe('STALE_ROUND');
    expect(errorCode(await h0.submit(h0.metadata(deadlinePlan, old, { roundId: 'deadline-task:2' })))).toBe(
      'NONCE_MISMATCH',
    );
    const closes = () => h0.closed.filter((c) => c.roundId === deadlinePlan.roundId).map((c) => c.state);
    await waitFor(() => closes().length >= 2, PATIENCE_MS, 'round:closed REJECTED');
    expect(closes()).toEqual(['AGGREGATING', 'REJECTED']);
  });
});
