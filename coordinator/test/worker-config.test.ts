import { describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import { readWorkerConfig } from '../src/worker/worker-config.js';

describe('readWorkerConfig (worker process environment)', () => {
  it('requires REDIS_URL and says why', () => {
    for (const env of [{}, { REDIS_URL: '  ' }]) {
      expect(() => readWorkerConfig(env)).toThrow(FlotillaError);
      expect(() => readWorkerConfig(env)).toThrow(
        /REDIS_URL is required: the worker must share the coordinator's Redis/,
      );
    }
  });

  it('applies the documented defaults', () => {
    expect(readWorkerConfig({ REDIS_URL: 'redis://127.0.0.1:6379' })).toEqual({
      redisUrl: 'redis://127.0.0.1:6379',
      prefix: 'flotilla',
      stateDir: '.flotilla',
      blobStore: 'local',
      logLevel: 'info',
    });
  });

  it('reads every variable, numbers included', () => {
    expect(
      readWorkerConfig({
        REDIS_URL: 'unix:///tmp/r.sock',
        FLOTILLA_PREFIX: 'fleet-a',
        FLOTILLA_STATE_DIR: '/var/lib/flotilla',
        FLOTILLA_BLOB_STORE: 'redis',
        LOG_LEVEL: 'debug',
        FLOTILLA_NOISE_SEED: 'run-7',
        FLOTILLA_LOCK_DURATION_MS: '2000',
        FLOTILLA_STALLED_INTERVAL_MS: '1000',
        FLOTILLA_WORKER_CONCURRENCY: '2',
        FLOTILLA_TEST_DELAY_MS: '0',
      }),
    ).toEqual({
      redisUrl: 'unix:///tmp/r.sock',
      prefix: 'fleet-a',
      stateDir: '/var/lib/flotilla',
      blobStore: 'redis',
      logLevel: 'debug',
      noiseSeed: 'run-7',
      lockDurationMs: 2000,
      stalledIntervalMs: 1000,
      concurrency: 2,
      testDelayMs: 0,
    });
  });

  it('names each malformed variable', () => {
    expect(() =>
      readWorkerConfig({
        REDIS_URL: 'redis://h',
        FLOTILLA_BLOB_STORE: 's3',
        FLOTILLA_LOCK_DURATION_MS: '-5',
      }),
    ).toThrow(/invalid worker configuration: blobStore: .*; lockDurationMs: /);
    expect(() => readWorkerConfig({ REDIS_URL: 'redis://h', FLOTILLA_PREFIX: 'a b' })).toThrow(/prefix/);
  });

  it('reads the hierarchical-round thresholds and says what a bad one must be', () => {
    expect(
      readWorkerConfig({
        REDIS_URL: 'redis://h',
        FLOTILLA_HIERARCHICAL_THRESHOLD: '0',
        FLOTILLA_SHARD_SIZE: '50',
      }),
    ).toMatchObject({ hierarchicalThreshold: 0, shardSize: 50 });
    const bad = (env: Record<string, string>) => () => readWorkerConfig({ REDIS_URL: 'redis://h', ...env });
    expect(bad({ FLOTILLA_HIERARCHICAL_THRESHOLD: 'lots' })).toThrow(
      /hierarchicalThreshold: FLOTILLA_HIERARCHICAL_THRESHOLD must be a number of updates \(0 = never\)/,
    );
    expect(bad({ FLOTILLA_HIERARCHICAL_THRESHOLD: '-1' })).toThrow(
      /FLOTILLA_HIERARCHICAL_THRESHOLD must be >= 0/,
    );
    expect(bad({ FLOTILLA_SHARD_SIZE: '0' })).toThrow(
      /shardSize: FLOTILLA_SHARD_SIZE must be a whole number/,
    );
    expect(bad({ FLOTILLA_SHARD_SIZE: '2.5' })).toThrow(/FLOTILLA_SHARD_SIZE must be a whole number/);
  });

  it('reads the shard math threads (0 = on the event loop) and refuses a bad count', () => {
    const read = (value: string) =>
      readWorkerConfig({ REDIS_URL: 'redis://h', FLOTILLA_SHARD_MATH_THREADS: value });
    expect(read('0')).toMatchObject({ shardMathThreads: 0 });
    expect(read('2')).toMatchObject({ shardMathThreads: 2 });
    expect(readWorkerConfig({ REDIS_URL: 'redis://h' }).shardMathThreads).toBeUndefined();
    expect(() => read('-1')).toThrow(/shardMathThreads: FLOTILLA_SHARD_MATH_THREADS must be >= 0/);
    expect(() => read('1.5')).toThrow(/FLOTILLA_SHARD_MATH_THREADS must be a whole number/);
    expect(() => read('many')).toThrow(/FLOTILLA_SHARD_MATH_THREADS must be a number of threads/);
  });
});
