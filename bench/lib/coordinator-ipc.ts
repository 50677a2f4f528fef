// IPC between the bench (load generator) and its coordinator child process: operator commands
// (enroll devices, register a task) and probes (memory, round state), validated on both sides.
import { z } from 'zod';

export const CoordinatorCommandSchema = z.discriminatedUnion('cmd', [
  z.object({
    id: z.number().int(),
    cmd: z.literal('register'),
    devices: z.array(z.object({ deviceId: z.string(), publicKey: z.string() })).max(20_000),
  }),
  z.object({
    id: z.number().int(),
    cmd: z.literal('create-task'),
    /** A TaskDefinitionInput without `baseModel`: the child stores a stand-in base blob. */
    task: z.record(z.string(), z.unknown()),
  }),
  /** Memory after a full GC (the child runs with --expose-gc). */
  z.object({ id: z.number().int(), cmd: z.literal('memory') }),
  z.object({ id: z.number().int(), cmd: z.literal('round'), roundId: z.string() }),
]);
export type CoordinatorCommand = z.infer<typeof CoordinatorCommandSchema>;
export type CoordinatorCommandInput = CoordinatorCommand extends infer C
  ? C extends { id: number }
    ? Omit<C, 'id'>
    : never
  : never;

export const CoordinatorReplySchema = z.union([
  z.object({ id: z.number().int(), ok: z.literal(true), data: z.unknown() }),
  z.object({ id: z.number().int(), ok: z.literal(false), error: z.string() }),
]);
export type CoordinatorReply = z.infer<typeof CoordinatorReplySchema>;

/** What the child prints (as `BENCH_READY <json>`) once it listens. */
export const ReadyLineSchema = z.object({ url: z.string(), pid: z.number().int(), worker: z.boolean() });

export const MemorySchema = z.object({ rss: z.number(), heapUsed: z.number(), external: z.number() });
export type Memory = z.infer<typeof MemorySchema>;
