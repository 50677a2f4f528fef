import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex, type Ack, type RoundLogEvent, type RoundLogEventOf } from '@flotilla/protocol';
import { aggregateQueue, aggregateJobId, AggregateJobDataSchema } from '../src/shared/queues.js';
import { redisOptionsFromUrl } from '../src/shared/redis-connection.js';
import { auditVerifyCommand, exportRoundLog } from '../src/shared/round-log/index.js';
import { ELIGIBLE, loraDelta, ProcessCluster, waitFor, type TestDevice } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

// DELETE /api/admin/devices/:id used to flip a flag: the device's live socket stayed connected,
// its check-ins were answered, its session token still uploaded blobs, and the update it had
// accepted in the open round was aggregated. Against two coordinator processes and a worker
// process: within 1 s every socket of the device is closed (also on the process that did not
// revoke it), its tokens are dead at once, and its update is excluded with a logged reason.
// The revocation and the rest of the round run once in beforeAll, in the order a fleet meets
// them; each `it` then checks one thing that was observed.

const TASK = 'revoke';
const ROUND = `${TASK}:1`;

describe('revocation reaches every coordinator process (two coordinators, one worker process)', () => {
  const cluster = new ProcessCluster('revoke');
  const victimBlob = loraDelta(0.9);
  let victim: TestDevice;
  let revoked: Response;
  let revokedAt = 0;
  let checkIn: Ack<unknown> | null = null;
  const putStatuses: number[] = [];
  let closedAt = 0;
  let reconnect: Ack<unknown>;
  let events: RoundLogEvent[] = [];

  beforeAll(async () => {
    await cluster.startCoordinator();
    await cluster.startCoordinator();
    await cluster.spawnWorker();
    // Goal 3 of 4 selected: the round closes on the three honest updates.
    await cluster.createTask(TASK, { rounds: { goalCount: 3, overSelection: 1.3, minReports: 3 } });
    const honest = await cluster.enrollAndConnect('honest', 3, cluster.url(0));
    victim = await cluster.enrollOne('victim', cluster.url(1));

    const plan = await cluster.joinFirstRound(TASK, [...honest, victim]);
    expect(await victim.report(plan, victimBlob)).toMatchObject({ ok: true });
    const [h0, h1, h2] = honest as [TestDevice, TestDevice, TestDevice];
    expect(await h0.report(plan, loraDelta(0.1))).toMatchObject({ ok: true });
    const token = victim.session?.sessionToken ?? '';

    const socket = victim.socket;
    if (!socket) throw new Error('victim not connected');
    let disconnectedAt: number | null = null;
    socket.once('disconnect', () => (disconnectedAt = Date.now()));

    // Revoked through process A; the device is connected to process B.
    const sent = Date.now();
    revoked = await cluster.operator('DELETE', `/api/admin/devices/${victim.deviceId}`);
    revokedAt = Date.now();
    // A check-in on the connection it still had.
    checkIn = await socket
      .timeout(2000)
      .emitWithAck('checkin', { taskId: TASK, ...ELIGIBLE })
      .then(
        (ack: Ack<unknown>) => ack,
        () => null,
      );
    // Its session token, on both processes, right after the DELETE is answered.
    for (const url of [cluster.url(0), cluster.url(1)]) {
      const other = loraDelta(0.42);
      const put = await fetch(`${url}/blobs/${sha256Hex(other)}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}` },
        body: Buffer.from(other),
      });
      putStatuses.push(put.status);
    }
    closedAt = await waitFor(() => disconnectedAt, PATIENCE_MS, 'the socket on process B closed');
    reconnect = await victim.connect();

    // The round goes on without it: the other two honest updates reach the goal of 3.
    expect(await h1.report(plan, loraDelta(0.2))).toMatchObject({ ok: true });
    expect(await h2.report(plan, loraDelta(0.3))).toMatchObject({ ok: true });
    await cluster.outcome(ROUND);
    events = await cluster.events(ROUND);
    console.info(
      `[revocation] DELETE answered in ${revokedAt - sent} ms; the socket on the other process closed ${closedAt - revokedAt} ms after the answer`,
    );
  });
  afterAll(() => cluster.stop());

  it('answers the operator with what the revocation did', async () => {
    expect(revoked.status).toBe(200);
    expect(await revoked.json()).toMatchObject({
      deviceId: victim.deviceId,
      status: 'revoked',
      excludedFrom: [ROUND],
    });
  });

  it('does not answer a check-in on the connection the device still had', () => {
    expect(checkIn === null || !checkIn.ok).toBe(true);
    if (checkIn && !checkIn.ok) expect(checkIn.error.code).toBe('REVOKED_DEVICE');
  });

  it('kills its session token on both processes as soon as the DELETE is answered', () => {
    expect(putStatuses).toEqual([401, 401]);
  });

  it('closes its socket on the other process within 1 s, and refuses it reconnecting', () => {
    expect(closedAt - revokedAt).toBeLessThanOrEqual(1000);
    expect(victim.errors).toContainEqual({
      code: 'REVOKED_DEVICE',
      message: 'device enrollment was revoked',
    });
    expect(reconnect).toMatchObject({ ok: false, error: { code: 'REVOKED_DEVICE' } });
  });

  it('commits the round on the three honest updates, without the revoked one', async () => {
    expect(await cluster.outcome(ROUND)).toMatchObject({ decision: 'COMMITTED' });
    const queue = aggregateQueue(redisOptionsFromUrl(cluster.redisUrl), cluster.prefix);
    const job = await queue.getJob(aggregateJobId(ROUND));
    await queue.close();
    const digests = AggregateJobDataSchema.parse(job?.data).updates.map((u) => u.blobDigest);
    expect(digests).toHaveLength(3);
    expect(digests).not.toContain(sha256Hex(victimBlob));
  });

  it('logs its exclusion with the reason before the close, and leaves it out of the aggregation', () => {
    const types = events.map((e) => e.type);
    const excluded = events.find((e) => e.type === 'update.excluded');
    expect(excluded).toMatchObject({ reason: 'REVOKED_DEVICE', blobDigest: sha256Hex(victimBlob) });
    expect(types.indexOf('update.excluded')).toBeLessThan(types.indexOf('round.closed'));
    const closed = events.find((e): e is RoundLogEventOf<'round.closed'> => e.type === 'round.closed');
    expect(closed?.accepted).toBe(3);
    const aggregation = events.find((e) => e.type === 'aggregation');
    expect(aggregation?.participants.map((p) => p.blobDigest)).not.toContain(sha256Hex(victimBlob));
  });

  it('leaves a round log that verifies', async () => {
    const file = join(cluster.stateDir, 'export.jsonl');
    await exportRoundLog(cluster.redis, cluster.prefix, file);
    expect(JSON.parse((await auditVerifyCommand({ file, json: true })).output)).toMatchObject({ ok: true });
  });
});
