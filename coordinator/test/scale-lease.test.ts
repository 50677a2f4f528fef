import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { redisKeys } from '../src/shared/keys.js';
import { FleetPresence } from '../src/server/presence.js';
import { RoundLease } from '../src/server/round-lease.js';
import { RoundStore, type RoundRecord } from '../src/server/round-store.js';
import { uniquePrefix } from '../../test-support/redis.js';
import { testRedisConnections, waitFor } from './support/index.js';
import { PATIENCE_MS } from '../../test-support/patience.js';

const logger = pino({ level: 'silent' });
const connect = testRedisConnections();

function roundRecord(roundId: string): RoundRecord {
  return {
    roundId,
    taskId: 't',
    roundNumber: 1,
    state: 'SELECTING',
    nonce: 'n',
    openedAt: 0,
    selectionDeadline: 0,
    goalCount: 1,
    minReports: 1,
    acceptWindowMs: 0,
    targetSelect: 1,
    minSelect: 1,
    acceptedCount: 0,
    skippedCount: 0,
    finalRefusedCount: 0,
    selectedCount: 0,
  };
}

function lease(redis: Redis, prefix: string, ttlMs: number, events: string[], name: string): RoundLease {
  return new RoundLease({
    redis,
    keys: redisKeys(prefix),
    logger,
    ttlMs,
    onAcquired: (token) => {
      events.push(`${name}+${token}`);
      return Promise.resolve();
    },
    onLost: () => events.push(`${name}-`),
  });
}

describe('round-driver lease with fencing tokens', () => {
  it('gives the lease to one process, hands it over on expiry, and fences the stale holder', async () => {
    const prefix = uniquePrefix('lease');
    const keys = redisKeys(prefix);
    const events: string[] = [];
    const redisA = connect();
    const a = lease(redisA, prefix, 600, events, 'a');
    const b = lease(connect(), prefix, 600, events, 'b');
    await a.start();
    await b.start();
    expect(a.holds()).toBe(true);
    expect(b.holds()).toBe(false);
    expect(events).toEqual(['a+1']);

    const fenced: string[] = [];
    const storeA = new RoundStore(
      connect(),
      keys,
      a.fence((op, id) => fenced.push(`${op} ${id}`)),
    );
    const storeB = new RoundStore(connect(), keys, b.fence());
    expect(await storeA.create(roundRecord('t:1'))).toBe(true);
    // A follower's writes are refused: it holds no token.
    expect(await storeB.transition('t:1', ['SELECTING'], 'ABANDONED')).toBe(false);
    expect(await storeB.create(roundRecord('t:2'))).toBe(false);
    expect(await storeB.setSelected('t:1', ['d'])).toBe(false);

    // A renews while alive: after several ttls it still drives.
    await new Promise((r) => setTimeout(r, 1500));
    expect(a.holds()).toBe(true);
    expect(b.holds()).toBe(false);

    // A stalls (its Redis connection is cut; its timers keep running): the lease expires and B
    // takes it with the next fencing token.
    redisA.disconnect();
    await waitFor(() => b.holds(), PATIENCE_MS, 'takeover by b');
    expect(events).toContain('b+2');
    expect(await connect().get(keys.driverLock())).toBe('2');
    // A believed it held until its own deadline passed; it then steps down.
    await waitFor(() => events.includes('a-'), PATIENCE_MS, 'a steps down');
    expect(a.holds()).toBe(false);

    // A writer with a stale token is refused atomically, whatever it believes.
    const stale = new RoundStore(connect(), keys, { lockKey: keys.driverLock(), token: () => '1' });
    expect(await stale.transition('t:1', ['SELECTING'], 'ABANDONED')).toBe(false);
    expect(await connect().hget(keys.round('t:1'), 'state')).toBe('SELECTING');
    expect(await storeA.transition('t:1', ['SELECTING'], 'ABANDONED')).toBe(false);
    expect(fenced).toEqual(['transition to ABANDONED t:1']);
    // The holder of the current token writes, and the round records which token wrote last.
    expect(await storeB.transition('t:1', ['SELECTING'], 'CONFIGURING')).toBe(true);
    expect(await connect().hget(keys.round('t:1'), 'fence')).toBe('2');

    // A graceful stop releases the lease at once.
    await b.stop();
    expect(await connect().exists(keys.driverLock())).toBe(0);
    await a.stop();
  });
});

describe('fleet-wide presence', () => {
  it('sees devices of other processes, forgets closed sockets, and a dead process after its ttl', async () => {
    const prefix = uniquePrefix('presence');
    const keys = redisKeys(prefix);
    const redisDead = connect();
    const live = new FleetPresence({ redis: connect(), keys, logger, ttlMs: 600, processId: 'live' });
    const dead = new FleetPresence({ redis: redisDead, keys, logger, ttlMs: 600, processId: 'dead' });
    live.start();
    dead.start();
    await live.add('d1');
    await live.add('d1');
    await dead.add('d2');
    expect(await dead.isOnline('d1')).toBe(true);
    expect(await live.isOnline('d2')).toBe(true);
    expect(await live.isOnline('d3')).toBe(false);
    // Two sockets of d1: closing one keeps it online.
    await live.remove('d1');
    expect(await dead.isOnline('d1')).toBe(true);
    await live.remove('d1');
    expect(await dead.isOnline('d1')).toBe(false);
    // Refreshing keeps a live claim past its ttl.
    await live.add('d4');
    await new Promise((r) => setTimeout(r, 1000));
    expect(await dead.isOnline('d4')).toBe(true);
    // A process that stops refreshing (SIGKILL) stops vouching after its ttl.
    redisDead.disconnect();
    await dead.stop();
    await waitFor(async () => !(await live.isOnline('d2')), PATIENCE_MS, 'd2 offline');
    await live.stop();
    expect(await connect().exists(keys.presence('d4'))).toBe(0);
  });
});
