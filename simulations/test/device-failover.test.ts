import { afterAll, describe, expect, it } from 'vitest';
import { generateSigningKeyPair, toBase64, type RoundPlan } from '@flotilla/protocol';
import { FlotillaDevice, type Trainer } from '@flotilla/client';
import { flotilla, MODULE, ProcessCluster, RANK, SHAPES, waitFor } from './support/index.js';

// Failover without a load balancer: devices given both coordinators of one fleet (two processes
// on one Redis) run a round on the first; the first is SIGKILLed while they train the next round,
// and they deliver that round's updates to the second, which has taken the round over.

/** Round 2's training waits for this gate, which the test opens once the first process is dead. */
let openGate: () => void = () => undefined;
const gate = new Promise<void>((resolve) => (openGate = resolve));

/** A stand-in trainer: a small fixed LoRA delta (no tfjs), weighted by 10 examples. */
const fixedDelta: Trainer = {
  train: async (plan: RoundPlan) => {
    if (plan.roundNumber === 2) await gate;
    return {
      kind: 'update',
      delta: new Map([
        [
          `base_model.model.${MODULE}.lora_A.weight`,
          { shape: [RANK, SHAPES.in], values: new Float32Array(RANK * SHAPES.in).fill(0.01) },
        ],
        [
          `base_model.model.${MODULE}.lora_B.weight`,
          { shape: [SHAPES.out, RANK], values: new Float32Array(SHAPES.out * RANK).fill(0.02) },
        ],
      ]),
      numExamples: 10,
      steps: 1,
    };
  },
};

describe('a device with several coordinator URLs', () => {
  const cluster = new ProcessCluster('failover');
  const devices: FlotillaDevice[] = [];
  afterAll(async () => {
    for (const d of devices) d.stop();
    await cluster.stop();
  });

  it('fails over to the second coordinator when the first is killed, and keeps taking part', async () => {
    const [first, second] = [
      await cluster.startCoordinator(['--lease-ttl-ms', '3000']),
      await cluster.startCoordinator(['--lease-ttl-ms', '3000']),
    ];
    await cluster.startWorker();
    await cluster.createTask('fo', {
      rounds: { goalCount: 2, minReports: 2, maxRounds: 2, selectionTimeoutMs: 60_000 },
    });
    const moved: string[][] = [[], []];
    for (const i of [0, 1]) {
      const keys = generateSigningKeyPair();
      const res = await cluster.operator('POST', '/api/admin/devices', {
        deviceId: `fo-${i}`,
        publicKey: toBase64(keys.publicKey),
      });
      expect(res.status).toBe(201);
      devices.push(
        new FlotillaDevice({
          url: [first.url, second.url],
          deviceId: `fo-${i}`,
          keys,
          taskId: 'fo',
          trainer: fixedDelta,
          maxRounds: 2,
          reconnectDelayMs: 200,
          eligibility: {
            charging: true,
            unmeteredNetwork: true,
            freeStorageBytes: 1e9,
            computeClass: 'high',
          },
          onCoordinatorChanged: ({ url }) => moved[i]?.push(url),
        }),
      );
    }
    await Promise.all(devices.map((d) => d.start()));
    expect((await cluster.outcome('fo:1', 60_000)).decision).toBe('COMMITTED');
    expect(moved).toEqual([[], []]);

    await first.kill();
    await waitFor(() => moved.every((m) => m.length > 0), 30_000, 'both devices failed over');
    expect(moved).toEqual([[second.url], [second.url]]);
    openGate();
    // The second process takes the round-driver lease over and runs round 2 with them.
    expect((await cluster.outcome('fo:2', 90_000)).decision).toBe('COMMITTED');
    expect(await Promise.all(devices.map((d) => d.stopped))).toEqual(['max-rounds', 'max-rounds']);
    // Both updates of round 2 were trained after the first process died: the second accepted them.
    const accepted = (await cluster.events('fo:2')).filter((e) => e.type === 'update.accepted');
    expect(accepted).toHaveLength(2);
  }, 240_000);

  it('flotilla device takes --url more than once or as a comma list, and names a bad one', async () => {
    const args = ['device', '--task', 't', '--device-id', 'd', '--key-file', '/nonexistent/k'];
    const bad = await flotilla([...args, '--url', 'http://127.0.0.1:1,ftp://elsewhere']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--url: expected an http(s) URL, got "ftp://elsewhere"');
    expect((await flotilla(['device', '--help'])).stdout).toContain('--url <url>');
  });
});
