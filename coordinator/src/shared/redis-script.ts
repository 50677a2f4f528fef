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
export async function runScript(
  redis: Redis,
  source: string,
  numKeys: number,
  ...args: ScriptArgument[]
): Promise<unknown> {
  try {
    return await redis.evalsha(shaOf(source), numKeys, ...args);
  } catch (error) {
    if (!isNoScript(error)) throw error;
    return redis.eval(source, numKeys, ...args);
  }
}
