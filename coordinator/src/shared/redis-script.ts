import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** What a script's KEYS and ARGV may hold. */
type ScriptArgument = string | Buffer | number;

/** SHA-1 of each script source seen, as Redis names it in its script cache. */
const scriptShas = new Map<string, string>();

function shaOf(source: string): string {
  let sha = scriptShas.get(source);
  if (sha === undefined) {
    sha = createHash('sha1').update(source).digest('hex');
    scriptShas.set(source, sha);
  }
  return sha;
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/**
 * Runs a Lua script by its SHA-1 (EVALSHA) and sends the source (EVAL) only when Redis does not
 * have it cached: after a restart, a SCRIPT FLUSH, or on first use. Our scripts carry their
 * documentation, several kB each; sent with every call on the hot path they cost more to write,
 * read and hash than the work they do. NOSCRIPT means nothing ran, so the EVAL retry is safe.
 */
export function runScript(
  redis: Redis,
  source: string,
  numKeys: number,
  ...args: ScriptArgument[]
): Promise<unknown> {
  return bySha(
    () => redis.evalsha(shaOf(source), numKeys, ...args),
    () => redis.eval(source, numKeys, ...args),
  );
}

/**
 * ioredis adds a `<command>Buffer` variant of every command at runtime, but its types leave out
 * the scripting ones. (`callBuffer('EVALSHA', …)` is no way round: with auto-pipelining on, as
 * the coordinator runs it, ioredis drops the command name.)
 */
interface BufferScripting {
  evalshaBuffer(sha: string, numKeys: number, ...args: ScriptArgument[]): Promise<unknown>;
  evalBuffer(source: string, numKeys: number, ...args: ScriptArgument[]): Promise<unknown>;
}

/** `runScript` whose bulk-string replies stay raw bytes (Buffers), for scripts that return binary. */
export function runScriptBuffer(
  redis: Redis,
  source: string,
  numKeys: number,
  ...args: ScriptArgument[]
): Promise<unknown> {
  const buffers = redis as unknown as BufferScripting;
  return bySha(
    () => buffers.evalshaBuffer(shaOf(source), numKeys, ...args),
    () => buffers.evalBuffer(source, numKeys, ...args),
  );
}

async function bySha(viaSha: () => Promise<unknown>, viaSource: () => Promise<unknown>): Promise<unknown> {
  try {
    return await viaSha();
  } catch (error) {
    if (!isNoScript(error)) throw error;
    return viaSource();
  }
}
