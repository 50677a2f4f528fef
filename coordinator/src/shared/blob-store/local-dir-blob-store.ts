import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  close as fsClose,
  closeSync,
  fstatSync,
  fsync as fsFsync,
  mkdirSync,
  open as fsOpen,
  openSync,
  readFileSync,
  readSync,
  statSync,
  writev as fsWritev,
} from 'node:fs';
import {
  mkdir,
  open,
  readdir,
  rename,
  rm,
  stat,
  readFile,
  unlink,
  utimes,
  type FileHandle,
} from 'node:fs/promises';
import { join } from 'node:path';
import { FlotillaError, SHA256_HEX, sha256Hex } from '@flotilla/protocol';
import {
  BLOB_READ_CHUNK_BYTES,
  SYNC_READ_SLICE_BYTES,
  type BlobListing,
  type BlobReader,
  type BlobStore,
  type ByteRange,
  type ReadMemory,
} from './types.js';
import { assertDigest, clampRange, readAll, streamVerified, verifyAgainstStored } from './hashing.js';

/** Options of the local-directory blob store. */
export interface LocalDirBlobStoreOptions {
  /** Directory holding `<aa>/<digest>` files; created if missing (mode 0700). */
  dir: string;
}

/**
 * Raw per-device deltas live here, so nothing is readable by other users of the machine: the
 * directories are 0700 and the files 0600 (the process's umask cannot widen them).
 */
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

/** Bytes of an upload gathered before they are written: 1 MiB. */
const WRITE_BATCH_BYTES = 1024 ** 2;

/** chmod 0700; a directory owned by someone else (an auditor reading a copy) is left as it is. */
function closeDirectory(path: string): void {
  try {
    chmodSync(path, DIR_MODE);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
  }
}

// The write path calls node:fs with a file descriptor and callbacks, one promise per call: the
// FileHandle of fs/promises adds its own bookkeeping to each of an upload's calls on the event
// loop (docs/benchmarks.md, ingest).
const openForWrite = (path: string) =>
  new Promise<number>((resolve, reject) =>
    fsOpen(path, 'w', FILE_MODE, (error, fd) => (error ? reject(error) : resolve(fd))),
  );
const writevAt = (fd: number, chunks: Uint8Array[]) =>
  new Promise<number>((resolve, reject) =>
    fsWritev(fd, chunks, (error, written) => (error ? reject(error) : resolve(written))),
  );
const fsyncFd = (fd: number) =>
  new Promise<void>((resolve, reject) => fsFsync(fd, (error) => (error ? reject(error) : resolve())));
const closeFd = (fd: number) =>
  new Promise<void>((resolve, reject) => fsClose(fd, (error) => (error ? reject(error) : resolve())));

/** Writes every byte of `chunks` at the file's position (writev may write only a part). */
async function writeAll(fd: number, chunks: Uint8Array[]): Promise<void> {
  let rest = chunks;
  while (rest.length > 0) {
    let bytesWritten = await writevAt(fd, rest);
    if (bytesWritten === 0) throw new FlotillaError('INTERNAL', 'blob write made no progress');
    while (rest.length > 0 && bytesWritten >= (rest[0] as Uint8Array).length) {
      bytesWritten -= (rest[0] as Uint8Array).length;
      rest = rest.slice(1);
    }
    if (bytesWritten > 0) rest = [(rest[0] as Uint8Array).subarray(bytesWritten), ...rest.slice(1)];
  }
}

/** A view of a read's own buffer (allocated for this file alone), not a second copy. */
function viewOf(bytes: Buffer): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Blobs as files; writes go to a temp file renamed into place, so a reader never sees half a blob. */
export class LocalDirBlobStore implements BlobStore {
  private readonly dir: string;
  /** Shard directories (`<aa>`) known to exist. */
  private readonly shards = new Set<string>();

  constructor(options: LocalDirBlobStoreOptions) {
    this.dir = options.dir;
    mkdirSync(join(this.dir, 'tmp'), { recursive: true, mode: DIR_MODE });
    // A directory created by an earlier version (0755) is closed here: every blob is below it.
    closeDirectory(this.dir);
    closeDirectory(join(this.dir, 'tmp'));
  }

  private path(digest: string): string {
    assertDigest(digest);
    return join(this.dir, digest.slice(0, 2), digest);
  }

  async has(digest: string): Promise<boolean> {
    return (await this.size(digest)) !== null;
  }

  /**
   * A synchronous stat: every upload asks first whether its digest is stored, and a missing file
   * costs about 1 µs this way against 15–45 µs of CPU for an async stat rejecting with ENOENT.
   */
  size(digest: string): Promise<number | null> {
    try {
      return Promise.resolve(statSync(this.path(digest), { throwIfNoEntry: false })?.size ?? null);
    } catch {
      return Promise.resolve(null);
    }
  }

  async get(digest: string): Promise<Uint8Array | null> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.path(digest));
    } catch {
      return null;
    }
    return viewOf(bytes);
  }

  /**
   * Synchronous reads: 100 deltas of 400 kB take about 7 ms of CPU this way against 20–30 ms as
   * async reads (their thread-pool round trips and promises), and the event loop runs again after
   * every `SYNC_READ_SLICE_BYTES`.
   */
  async getMany(
    digests: readonly string[],
    options: { into?: ReadMemory } = {},
  ): Promise<Array<Uint8Array | null>> {
    const out: Array<Uint8Array | null> = [];
    let sinceYield = 0;
    for (const digest of digests) {
      if (sinceYield >= SYNC_READ_SLICE_BYTES) {
        await new Promise((resolve) => setImmediate(resolve));
        sinceYield = 0;
      }
      const bytes = this.readWhole(digest, options.into);
      sinceYield += bytes?.byteLength ?? 0;
      out.push(bytes);
    }
    return out;
  }

  /** The whole blob read synchronously, into `memory` while it has room; null when it cannot be read (as `get`). */
  private readWhole(digest: string, memory?: ReadMemory): Uint8Array | null {
    const path = this.path(digest);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return null;
    }
    try {
      const { size } = fstatSync(fd);
      const target = memory?.take(size);
      if (!target) return viewOf(readFileSync(fd));
      let filled = 0;
      while (filled < size) {
        const n = readSync(fd, target, filled, size - filled, filled);
        if (n === 0) return null; // cut short under us: unreadable, as a failed read is
        filled += n;
      }
      return target;
    } catch {
      return null;
    } finally {
      closeSync(fd);
    }
  }

  async getRange(digest: string, start: number, endInclusive: number): Promise<Uint8Array | null> {
    return readAll(await this.openRead(digest, { start, endInclusive }));
  }

  async openRead(digest: string, range?: ByteRange): Promise<BlobReader | null> {
    let handle: FileHandle;
    try {
      handle = await open(this.path(digest), 'r');
    } catch {
      return null;
    }
    // The open handle keeps the bytes readable even if garbage collection unlinks the file now.
    const { size } = await handle.stat();
    const { start, endInclusive } = clampRange(size, range);
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await handle.close();
    };
    async function* chunks(): AsyncGenerator<Uint8Array> {
      try {
        let position = start;
        while (position <= endInclusive) {
          const length = Math.min(BLOB_READ_CHUNK_BYTES, endInclusive - position + 1);
          const buffer = new Uint8Array(length);
          const { bytesRead } = await handle.read(buffer, 0, length, position);
          if (bytesRead === 0) throw new FlotillaError('INTERNAL', `blob ${digest} ended early`);
          position += bytesRead;
          yield buffer.subarray(0, bytesRead);
        }
      } finally {
        await close();
      }
    }
    return { size, chunks: chunks(), close };
  }

  async put(digest: string, bytes: Uint8Array): Promise<void> {
    const actual = sha256Hex(bytes);
    if (actual !== digest)
      throw new FlotillaError('DIGEST_MISMATCH', `blob hashes to ${actual}, not ${digest}`);
    if (await this.touch(digest)) return;
    await this.write(digest, [bytes], bytes.length);
  }

  async putStream(
    digest: string,
    source: AsyncIterable<Uint8Array>,
    options: { maxBytes: number },
  ): Promise<{ bytes: number; stored: boolean }> {
    if (await this.has(digest)) return verifyAgainstStored(this, digest, source, options.maxBytes);
    return { bytes: await this.write(digest, source, options.maxBytes), stored: true };
  }

  private async write(
    digest: string,
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    maxBytes: number,
  ): Promise<number> {
    const target = this.path(digest);
    const tmp = join(this.dir, 'tmp', `${digest}.${randomBytes(6).toString('hex')}`);
    const fd = await openForWrite(tmp);
    let fdOpen = true;
    try {
      // Chunks are written in batches of up to WRITE_BATCH_BYTES (one writev each), not one
      // write per network chunk: a delta of a few hundred kB is one write.
      let batch: Uint8Array[] = [];
      let batchBytes = 0;
      const flush = async () => {
        if (batch.length === 0) return;
        const chunks = batch;
        batch = [];
        batchBytes = 0;
        await writeAll(fd, chunks);
      };
      const bytes = await streamVerified(digest, source, maxBytes, (chunk) => {
        batch.push(chunk);
        batchBytes += chunk.length;
        return batchBytes >= WRITE_BATCH_BYTES ? flush() : undefined;
      });
      await flush();
      await fsyncFd(fd);
      fdOpen = false;
      await closeFd(fd);
      await this.moveIntoPlace(tmp, target, digest.slice(0, 2));
      return bytes;
    } catch (error) {
      // A descriptor is closed once: its number may belong to another file right after.
      if (fdOpen) await closeFd(fd).catch(() => undefined);
      await rm(tmp, { force: true });
      throw error;
    }
  }

  /**
   * Renames a finished temp file to its digest's path. The 256 shard directories are made once
   * per process, not before every write; one removed meanwhile is made again.
   */
  private async moveIntoPlace(tmp: string, target: string, shard: string): Promise<void> {
    if (!this.shards.has(shard)) {
      await mkdir(join(this.dir, shard), { recursive: true, mode: DIR_MODE });
      this.shards.add(shard);
    }
    try {
      await rename(tmp, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await mkdir(join(this.dir, shard), { recursive: true, mode: DIR_MODE });
      await rename(tmp, target);
    }
  }

  async touch(digest: string): Promise<boolean> {
    const now = new Date();
    try {
      await utimes(this.path(digest), now, now);
      return true;
    } catch {
      return false;
    }
  }

  async *list(): AsyncIterable<BlobListing> {
    for (const shard of await readdir(this.dir)) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      for (const name of await readdir(join(this.dir, shard)).catch(() => [] as string[])) {
        if (!SHA256_HEX.test(name) || !name.startsWith(shard)) continue;
        const info = await stat(join(this.dir, shard, name)).catch(() => null);
        if (info) yield { digest: name, bytes: info.size, lastUsedAt: info.mtimeMs };
      }
    }
  }

  async deleteIfUnused(digest: string, unusedSince: number): Promise<boolean> {
    const path = this.path(digest);
    const info = await stat(path).catch(() => null);
    if (!info || info.mtimeMs >= unusedSince) return false;
    await unlink(path).catch(() => undefined);
    return true;
  }

  /**
   * Removes temp files of uploads that died with their process (older than `olderThan`, epoch
   * ms). Returns how many were removed.
   */
  async removeStaleTemps(olderThan: number): Promise<number> {
    let removed = 0;
    for (const name of await readdir(join(this.dir, 'tmp')).catch(() => [] as string[])) {
      const path = join(this.dir, 'tmp', name);
      const info = await stat(path).catch(() => null);
      if (info && info.mtimeMs < olderThan) {
        await unlink(path).catch(() => undefined);
        removed++;
      }
    }
    return removed;
  }
}
