import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { testRedisUrl, uniquePrefix } from '../../../test-support/redis.js';
import { redisOptionsFromUrl } from '../shared/redis-connection.js';
import { publishApart, readFromLastSeen } from './cluster-adapter.js';

// The streams adapter's poll, replayed by hand on a real Redis: XREAD BLOCK 100 from `$`, an entry
// added by another process while no read is pending, then the next read from `$`. Plain `$` skips
// that entry (the emit it carries is lost); with readFromLastSeen the next read returns it.

const options = redisOptionsFromUrl(testRedisUrl());
const clients: Redis[] = [];
afterAll(() => clients.forEach((c) => c.disconnect()));

function client(): Redis {
  const c = new Redis(options);
  clients.push(c);
  return c;
}

/** Ids the poll returns: one read from `$`, an XADD by another client, another read from `$`. */
async function pollAcrossAnAdd(reader: Redis, stream: string): Promise<string[]> {
  const poll = () => reader.xread('COUNT', 100, 'BLOCK', 100, 'STREAMS', stream, '$');
  const read: string[] = [];
  const collect = (reply: [string, [string, string[]][]][] | null) =>
    read.push(...(reply?.[0]?.[1] ?? []).map(([id]) => id));
  collect(await poll());
  await client().xadd(stream, '*', 'nsp', '/', 'data', 'plan');
  collect(await poll());
  return read;
}

describe('readFromLastSeen (cluster adapter stream reads)', () => {
  it('plain `$` reads skip an entry added between two reads (the loss it fixes)', async () => {
    const stream = `${uniquePrefix('adapter-plain')}:socket.io`;
    expect(await pollAcrossAnAdd(client(), stream)).toEqual([]);
  });

  it('reads an entry added between two `$` reads, on an empty and on a used stream', async () => {
    for (const earlier of [0, 3]) {
      const stream = `${uniquePrefix('adapter-cursor')}:socket.io`;
      const writer = client();
      for (let i = 0; i < earlier; i++) await writer.xadd(stream, '*', 'nsp', '/', 'data', `old ${i}`);
      const reader = client();
      readFromLastSeen(reader, stream);
      const read = await pollAcrossAnAdd(reader, stream);
      // Only the new entry: the entries from before the adapter started are not replayed.
      const all = await writer.xrange(stream, '-', '+');
      expect(read, `${earlier} earlier entries`).toEqual([all[all.length - 1]?.[0]]);
    }
  });

  it('keeps `$` when Redis cannot name the last entry', async () => {
    const reader = client();
    const stream = `${uniquePrefix('adapter-down')}:socket.io`;
    // A key of another type makes XREVRANGE fail (WRONGTYPE); the read then falls back to `$`, which fails the same way.
    await reader.set(stream, 'not a stream');
    readFromLastSeen(reader, stream);
    await expect(reader.xread('BLOCK', 10, 'STREAMS', stream, '$')).rejects.toThrow(/WRONGTYPE/);
  });
});

describe('publishApart (cluster adapter appends)', () => {
  /** Until Redis holds a client blocked in XREAD (the poll has arrived and waits). */
  async function pollBlocking(observer: Redis): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const clients = (await observer.call('CLIENT', 'LIST')) as string;
      if (/flags=[a-zA-Z]*b[a-zA-Z]* .*cmd=xread/.test(clients)) return;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    throw new Error('the poll never blocked');
  }

  /** How a 100 ms blocking poll of `reader` and an append made through `reader` while it blocks settle, in order. */
  async function pollAndAppend(reader: Redis, stream: string): Promise<string[]> {
    const order: string[] = [];
    const poll = reader.xread('BLOCK', 100, 'STREAMS', stream, '$').then((reply) => {
      order.push(reply === null ? 'poll timed out' : 'poll read the append');
    });
    await pollBlocking(client());
    // As the adapter appends: its client's xadd, with the arguments as one array.
    const append = (reader.xadd as (...args: unknown[]) => Promise<unknown>)
      .call(reader, [stream, '*', 'nsp', '/', 'data', 'promoted'])
      .then(() => order.push('append'));
    await Promise.all([poll, append]);
    return order;
  }

  it('lets an append overtake the poll on the same client, which it otherwise waits behind', async () => {
    const stream = `${uniquePrefix('adapter-apart')}:socket.io`;
    await client().xadd(stream, '*', 'nsp', '/', 'data', 'first');
    // On one connection the append waits until the poll gives up (the delay it removes).
    expect(await pollAndAppend(client(), stream)).toEqual(['poll timed out', 'append']);
    const reader = client();
    publishApart(reader, client());
    // On its own connection it lands while the poll blocks, and the poll reads it.
    expect((await pollAndAppend(reader, stream)).sort()).toEqual(['append', 'poll read the append']);
  });
});
