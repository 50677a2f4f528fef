import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, rename, rm, stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FlotillaError, sha256Hex } from '@flotilla/protocol';
import type { BlobStore } from './types.js';
import { assertDigest, collectVerified } from './hashing.js';

/** Options of the local-directory blob store. */
export interface LocalDirBlobStoreOptions {
  /** Directory holding `<aa>/<digest>` files; created if missing. */
  dir: string;
}

/** Blobs as files; writes go to a temp file renamed into place, so a reader never sees half a blob. */
export class LocalDirBlobStore implements BlobStore {
  private readonly dir: string;

  constructor(options: LocalDirBlobStoreOptions) {
    this.dir = options.dir;
    mkdirSync(join(this.dir, 'tmp'), { recursive: true });
  }

  private path(digest: string): string {
    assertDigest(digest);
    return join(this.dir, digest.slice(0, 2), digest);
  }

  async has(digest: string): Promise<boolean> {
    return (await this.size(digest)) !== null;
  }

  async size(digest: string): Promise<number | null> {
    try {
      return (await stat(this.path(digest))).size;
    } catch {
      return null;
    }
  }

  async get(digest: string): Promise<Uint8Array | null> {
    try {
      return new Uint8Array(await readFile(this.path(digest)));
    } catch {
      return null;
    }
  }

  async getRange(digest: string, start: number, endInclusive: number): Promise<Uint8Array | null> {
    let handle;
    try {
      handle = await open(this.path(digest), 'r');
    } catch {
      return null;
    }
    try {
      const length = Math.max(0, endInclusive - start + 1);
      const buf = new Uint8Array(length);
      const { bytesRead } = await handle.read(buf, 0, length, start);
      return buf.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  async put(digest: string, bytes: Uint8Array): Promise<void> {
    const actual = sha256Hex(bytes);
    if (actual !== digest)
      throw new FlotillaError('DIGEST_MISMATCH', `blob hashes to ${actual}, not ${digest}`);
    await this.putStream(digest, [bytes], { maxBytes: bytes.length });
  }

  async putStream(
    digest: string,
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: { maxBytes: number },
  ): Promise<{ bytes: number }> {
    const target = this.path(digest);
    const tmp = join(this.dir, 'tmp', `${digest}.${randomBytes(6).toString('hex')}`);
    const handle = await open(tmp, 'w', 0o644);
    try {
      const iterable = (async function* () {
        for await (const c of source) yield c;
      })();
      const { bytes } = await collectVerified(digest, iterable, options.maxBytes, async (chunk) => {
        await handle.write(chunk);
      });
      await handle.sync();
      await handle.close();
      mkdirSync(join(this.dir, digest.slice(0, 2)), { recursive: true });
      await rename(tmp, target);
      return { bytes };
    } catch (error) {
      await handle.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw error;
    }
  }
}
