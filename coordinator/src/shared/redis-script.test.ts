import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { testRedisConnections } from '../../test/support/test-redis.js';
import { startEmbeddedRedis } from './embedded-redis.js';
import { runScript } from './redis-script.js';
import { redisOptionsFromUrl } from './redis-connection.js';

const ECHO = `return {KEYS[1], ARGV[1]} -- redis-script.test`;
const ECHO_SHA = createHash('sha1').update(ECHO).digest('hex');

describe('runScript (real Redis)', () => {
  const connect = testRedisConnections();

  it('runs a script by its SHA-1 once Redis has it, and sends the source again after SCRIPT FLUSH', async () => {
    // A redis-server of its own: ioredis misreads a MONITOR line that arrives with MONITOR's own
    // "OK" (ioredis issue 1981), which other test files' commands on a shared server can cause.
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-script-'));
    const server = await startEmbeddedRedis({ dataDir: join(dir, 'redis') });
    const redis = new Redis(redisOptionsFromUrl(server.url));
    const monitor = new Redis(redisOptionsFromUrl(server.url));
    try {
      // Both connected (their ready checks sent) before anything is monitored.
      await Promise.all([redis.ping(), monitor.ping()]);
      const sent: string[] = [];
      const watcher = await monitor.monitor();
      watcher.on('monitor', (_time: string, args: string[]) => {
        if ((args[0] === 'eval' && args[1] === ECHO) || (args[0] === 'evalsha' && args[1] === ECHO_SHA))
          sent.push(args[0]);
      });
      expect(await runScript(redis, ECHO, 1, 'k', 'first')).toEqual(['k', 'first']);
      expect(await runScript(redis, ECHO, 1, 'k', 'second')).toEqual(['k', 'second']);
      await redis.script('FLUSH');
      expect(await runScript(redis, ECHO, 1, 'k', 'third')).toEqual(['k', 'third']);
      // MONITOR reports asynchronously: wait (bounded) until it has shown all five calls.
      for (let i = 0; i < 100 && sent.length < 5; i++) await new Promise((r) => setTimeout(r, 20));
      watcher.disconnect();
      // Unknown at first (evalsha refused, eval), cached (evalsha), flushed (evalsha refused, eval).
      expect(sent).toEqual(['evalsha', 'eval', 'evalsha', 'evalsha', 'eval']);
    } finally {
      redis.disconnect();
      monitor.disconnect();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('passes a script error through instead of retrying it', async () => {
    const redis = connect();
    await expect(runScript(redis, `return redis.call('NOSUCHCOMMAND')`, 0)).rejects.toThrow(
      /Unknown Redis command|unknown command/i,
    );
  });
});
