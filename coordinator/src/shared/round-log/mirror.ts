import { mkdir, open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Redis } from 'ioredis';
import { FlotillaError } from '@flotilla/protocol';
import { roundLogKeys } from './keys.js';
import { readRoundLogLines } from './stream.js';

// The JSONL mirror. Any writer may call `syncMirror` after an append; under an exclusive lock
// file it appends every stream entry after the file's last seq, so the file is always a prefix
// of the stream in chain order no matter how appends from several processes interleave.
// After each fsync it records in Redis the seq the file now holds (`{prefix}:roundlog:mirrors`),
// which is what lets the stream be trimmed (trim.ts): a crash between the fsync and that write
// leaves the recorded seq behind the file, never ahead of it.

export interface MirrorOptions {
  redis: Redis;
  prefix: string;
  filePath: string;
  /** A lock file older than this is taken over (its holder died); ms, default 30000. */
  lockStaleMs?: number;
  /** Give up waiting for the lock after this long; ms, default 15000. */
  lockTimeoutMs?: number;
}

const CHUNK = 64 * 1024;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function acquireLock(lockPath: string, staleMs: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx');
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const info = await stat(lockPath).catch(() => null);
    if (info && Date.now() - info.mtimeMs > staleMs) await unlink(lockPath).catch(() => undefined);
    if (Date.now() > deadline)
      throw new FlotillaError('INTERNAL', `timed out waiting for the round-log mirror lock ${lockPath}`);
    await sleep(2 + Math.random() * 10);
  }
}

/**
 * The seq of the file's last complete line, after cutting off a torn last line (a crash during
 * a write leaves a line without its newline; it is re-mirrored from the stream).
 */
async function lastMirroredSeq(handle: FileHandle, filePath: string): Promise<number> {
  const { size } = await handle.stat();
  let tail = Buffer.alloc(0);
  let position = size;
  let lastNewline = -1;
  let lineStart = -1;
  while (position > 0) {
    const length = Math.min(CHUNK, position);
    position -= length;
    const chunk = Buffer.alloc(length);
    await handle.read(chunk, 0, length, position);
    tail = Buffer.concat([chunk, tail]);
    // Indices are into `tail`, which always ends at the end of the file.
    lastNewline = tail.lastIndexOf(0x0a);
    if (lastNewline < 0) continue;
    const previous = lastNewline > 0 ? tail.lastIndexOf(0x0a, lastNewline - 1) : -1;
    if (previous >= 0) {
      lineStart = previous + 1;
      break;
    }
    if (position === 0) lineStart = 0;
  }
  const validEnd = lastNewline < 0 ? 0 : position + lastNewline + 1;
  if (validEnd < size) await handle.truncate(validEnd);
  if (lastNewline < 0) return -1;
  const line = tail.subarray(Math.max(0, lineStart), lastNewline).toString('utf8');
  try {
    const seq = (JSON.parse(line) as { seq?: unknown }).seq;
    if (typeof seq === 'number' && Number.isInteger(seq)) return seq;
  } catch {
    // reported below
  }
  throw new FlotillaError(
    'CORRUPT_FILE',
    `the last line of ${filePath} is not a round-log record; run flotilla audit verify`,
  );
}

/**
 * The log names devices only by pseudonym, but who took part in which round is still the
 * operator's to share: the file is created 0600 (its directory 0700 when created here).
 */
const MIRROR_FILE_MODE = 0o600;

/** Takes away the world's access to a file made by an earlier version (a group granted on purpose stays). */
async function closeToOthers(handle: FileHandle): Promise<void> {
  const { mode } = await handle.stat();
  if ((mode & 0o007) !== 0) await handle.chmod(mode & 0o770);
}

/**
 * A mirror's name in `{prefix}:roundlog:mirrors`: host and absolute path, so processes on one
 * host sharing one file share one entry, and the same path on two hosts is two mirrors.
 */
export function mirrorIdOf(filePath: string): string {
  return `${hostname()}:${resolve(filePath)}`;
}

/** Mirror files whose directory entry this process has fsynced. */
const durableEntries = new Set<string>();

/**
 * Fsyncs the file's directory the first time this process writes the file: fsyncing the file
 * alone does not make a newly created file's name durable, and its registration (which allows
 * trimming) must not outlive the file in a crash.
 */
async function syncDirectoryOnce(filePath: string): Promise<void> {
  const path = resolve(filePath);
  if (durableEntries.has(path)) return;
  const directory = await open(dirname(path), 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
  durableEntries.add(path);
}

/** Records that the file durably holds every line through `seq` (−1: none). */
async function registerMirror(options: MirrorOptions, seq: number): Promise<void> {
  const value = JSON.stringify({ seq, at: Date.now() });
  await options.redis.hset(roundLogKeys(options.prefix).mirrors, mirrorIdOf(options.filePath), value);
}

/**
 * Appends to the JSONL file every stream record it lacks; returns how many lines were written.
 * A file that lacks lines already trimmed from the stream (deleted or cut short by hand, or new
 * on a trimmed log) is not written: the error says so, and its registration keeps the stream
 * from being trimmed further until it is restored or removed (docs/reliability.md).
 */
export async function syncMirror(options: MirrorOptions): Promise<number> {
  await mkdir(dirname(options.filePath), { recursive: true, mode: 0o700 });
  const lockPath = `${options.filePath}.lock`;
  await acquireLock(lockPath, options.lockStaleMs ?? 30_000, options.lockTimeoutMs ?? 15_000);
  try {
    const handle = await open(options.filePath, 'a+', MIRROR_FILE_MODE);
    try {
      await closeToOthers(handle);
      const after = await lastMirroredSeq(handle, options.filePath);
      const lines = await readRoundLogLines(options.redis, options.prefix, after).catch(
        async (error: unknown) => {
          // NOT_FOUND: lines after the file's last one were trimmed from the stream.
          if (!(error instanceof FlotillaError) || error.code !== 'NOT_FOUND') throw error;
          await registerMirror(options, after);
          throw new FlotillaError(
            'NOT_FOUND',
            `${options.filePath} ends at line ${after}, but ${error.message}: copy a complete mirror of this log there, or remove this mirror's entry (flotilla audit mirrors)`,
            { cause: error },
          );
        },
      );
      if (lines.length === 0) {
        await registerMirror(options, after);
        return 0;
      }
      let expected = after + 1;
      for (const { seq } of lines) {
        if (seq !== expected)
          throw new FlotillaError(
            'INTERNAL',
            `round-log stream has seq ${seq} where ${expected} was expected`,
          );
        expected++;
      }
      await handle.appendFile(lines.map(({ line }) => `${line}\n`).join(''));
      await handle.sync();
      await syncDirectoryOnce(options.filePath);
      await registerMirror(options, expected - 1);
      return lines.length;
    } finally {
      await handle.close();
    }
  } finally {
    await unlink(lockPath).catch(() => undefined);
  }
}
