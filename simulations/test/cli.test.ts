import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { decodeFloat32Tensors, encodeFloat32Tensors } from '@flotilla/protocol';
import { testRedisUrl, uniquePrefix } from '../../test-support/redis.js';
import { flotilla, processAlive, redisServerPids, startCliCoordinator, waitUntil } from './support/index.js';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** TF Privacy's MNIST setting: batches of 256 of 60,000 examples, 60 epochs (14,063 steps), δ = 1e-5. */
const MNIST_SETTING = ['--sampling-rate', String(256 / 60000), '--steps', '14063', '--delta', '1e-5'];

describe('flotilla CLI', () => {
  it('privacy epsilon reproduces the TF Privacy MNIST setting (q=256/60000, z=1.1, 60 epochs, δ=1e-5)', async () => {
    const { code, stdout } = await flotilla([
      ...['privacy', 'epsilon', ...MNIST_SETTING],
      ...['--noise-multiplier', '1.1', '--json'],
    ]);
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as { epsilon: number; order: number };
    // dp-published.json `tfp_mnist_256_1.1_60ep`: eps 2.596655528688368 at order 8.1.
    expect(out.epsilon).toBeCloseTo(2.596655528688368, 6);
    expect(out.order).toBe(8.1);
  });

  it('privacy noise solves back the noise multiplier', async () => {
    const { code, stdout } = await flotilla([
      ...['privacy', 'noise', ...MNIST_SETTING],
      ...['--target-epsilon', '2.596655528688368', '--json'],
    ]);
    expect(code).toBe(0);
    expect((JSON.parse(stdout) as { noiseMultiplier: number }).noiseMultiplier).toBeCloseTo(1.1, 4);
  });

  it('names the bad option and exits 2', async () => {
    const { code, stderr } = await flotilla([
      'privacy',
      'epsilon',
      '--sampling-rate',
      '2',
      '--noise-multiplier',
      '1',
      '--steps',
      '1',
      '--delta',
      '1e-5',
    ]);
    expect(code).toBe(2);
    expect(stderr).toContain('--sampling-rate');
  });

  it('aggregate reproduces the published weighted FedAvg vector on files', async () => {
    // aggregation-published.json `fedavg_weighted` (Flower fedavgm_test.py), weights n = [1, 2].
    const a = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const b = Float32Array.from([29, 23, 19, 17, 13, 11, 7, 5, 3, 2]);
    writeFileSync(
      join(dir, 'a.safetensors'),
      encodeFloat32Tensors(new Map([['w', { shape: [10], values: a }]])),
    );
    writeFileSync(
      join(dir, 'b.safetensors'),
      encodeFloat32Tensors(new Map([['w', { shape: [10], values: b }]])),
    );
    const out = join(dir, 'mean.safetensors');
    const { code } = await flotilla([
      'aggregate',
      '--strategy',
      'fedavg',
      '--weights',
      '1,2',
      join(dir, 'a.safetensors'),
      join(dir, 'b.safetensors'),
      '--out',
      out,
    ]);
    expect(code).toBe(0);
    const values = Array.from(
      decodeFloat32Tensors(new Uint8Array(readFileSync(out))).tensors.get('w')?.values ?? [],
    );
    const expected = [19.666667, 16.0, 13.666667, 12.666667, 10.333333, 9.333333, 7.0, 6.0, 5.0, 4.666667];
    values.forEach((v, i) => expect(v).toBeCloseTo(expected[i] ?? Number.NaN, 5));
  });

  it('audit verify fails with exit 1 on a file that is not a round log', async () => {
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"seq":0}\nnot json\n');
    const { code, stdout } = await flotilla(['audit', 'verify', bad, '--json']);
    expect(code).toBe(1);
    expect((JSON.parse(stdout) as { ok: boolean }).ok).toBe(false);
  });

  it('refuses a config file with an unknown field, naming it', async () => {
    const config = join(dir, 'flotilla.yaml');
    writeFileSync(config, 'stateDir: x\nport: 99999\n');
    const { code, stderr } = await flotilla(['--config', config, 'devices', 'list']);
    expect(code).toBe(2);
    expect(stderr).toContain('port');
  });

  it('checks the scale-out flags of flotilla coordinator before starting anything', async () => {
    const { code, stderr } = await flotilla(['coordinator', '--lease-ttl-ms', '50', '--state-dir', dir]);
    expect(code).toBe(2);
    expect(stderr).toContain('leaseTtlMs');
    const blobStore = await flotilla(['coordinator', '--blob-store', 's3', '--state-dir', dir]);
    expect(blobStore.code).toBe(2);
    expect(blobStore.stderr).toContain('blobStore');
    const onRestart = await flotilla(['coordinator', '--state-dir', dir], { FLOTILLA_ON_RESTART: 'retry' });
    expect(onRestart.code).toBe(2);
    expect(onRestart.stderr).toContain('onRestart');
  });

  it('flotilla coordinator --blob-store redis keeps blobs in the shared Redis', async () => {
    const prefix = uniquePrefix('cli');
    const token = 'operator-token-for-the-cli-test-01';
    const coordinator = await startCliCoordinator(['--state-dir', join(dir, 'coord'), '--prefix', prefix], {
      REDIS_URL: testRedisUrl(),
      FLOTILLA_OPERATOR_TOKEN: token,
      FLOTILLA_BLOB_STORE: 'redis',
    });
    const redis = new Redis(testRedisUrl());
    try {
      const bytes = new Uint8Array([1, 2, 3, 4, 5]);
      const digest = createHash('sha256').update(bytes).digest('hex');
      const put = await fetch(`${coordinator.url}/blobs/${digest}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
        body: bytes,
      });
      expect(put.status).toBe(201);
      expect(await redis.exists(`${prefix}:blob:${digest}`)).toBe(1);
    } finally {
      redis.disconnect();
      await coordinator.stop();
    }
  });

  it('a SIGKILLed flotilla coordinator leaves no private redis-server behind', async () => {
    const stateDir = join(dir, 'orphan');
    // No REDIS_URL: the command starts its own redis-server under <state-dir>/redis.
    const coordinator = await startCliCoordinator(['--state-dir', stateDir], { REDIS_URL: undefined });
    const dataDir = join(stateDir, 'redis');
    const [pid] = redisServerPids(dataDir);
    try {
      expect(pid, coordinator.output()).toBeDefined();
      process.kill(coordinator.pid, 'SIGKILL');
      await waitUntil(() => pid !== undefined && !processAlive(pid), 20_000, `redis-server ${pid} to exit`);
      expect(redisServerPids(dataDir)).toEqual([]);
    } finally {
      await coordinator.stop();
      if (pid !== undefined && processAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  it('flotilla coordinator protects /metrics with --metrics-token or FLOTILLA_METRICS_TOKEN', async () => {
    const token = 'metrics-token-for-the-cli-test-0123';
    const common = ['--redis-url', testRedisUrl(), '--state-dir', join(dir, 'metrics')];
    const byFlag = await startCliCoordinator([
      ...common,
      '--prefix',
      uniquePrefix('cli-m'),
      '--metrics-token',
      token,
    ]);
    const byEnv = await startCliCoordinator([...common, '--prefix', uniquePrefix('cli-m')], {
      FLOTILLA_METRICS_TOKEN: token,
    });
    const open = await startCliCoordinator([...common, '--prefix', uniquePrefix('cli-m')]);
    try {
      for (const { url } of [byFlag, byEnv]) {
        const anonymous = await fetch(`${url}/metrics`);
        expect(anonymous.status).toBe(401);
        expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
        expect(
          (await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } }))
            .status,
        ).toBe(401);
        const scraped = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
        expect(scraped.status).toBe(200);
        expect(await scraped.text()).toContain('flotilla_rounds_total');
      }
      // Without a token /metrics stays open, as documented.
      expect((await fetch(`${open.url}/metrics`)).status).toBe(200);
    } finally {
      await Promise.all([byFlag.stop(), byEnv.stop(), open.stop()]);
    }
    // A token too short to be a secret is refused before anything starts.
    const short = await flotilla(['coordinator', ...common, '--metrics-token', 'short']);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('metricsToken');
  });
});
