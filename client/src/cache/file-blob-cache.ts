import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FlotillaError, SHA256_HEX, sha256Hex } from '@flotilla/protocol';
import { assertDigest, assertRecordName, type BlobCache } from './blob-cache.js';

export interface FileBlobCacheOptions {
  /** Cache directory: blobs go to `<dir>/blobs/<sha256>`, records to `<dir>/records/<name>`. Created if missing. */
  dir: string;
}

/**
 * Node blob cache on the file system. Writes go to a temporary file that is renamed into place,
 * so a reader never sees a partial blob; reads re-hash the file, so a blob damaged on disk is
 * reported as missing (and deleted) instead of being trusted.
 */
export class FileBlobCache implements BlobCache {
  private readonly blobDir: string;
  private readonly recordDir: string;

  constructor(options: FileBlobCacheOptions) {
    this.blobDir = join(options.dir, 'blobs');
    this.recordDir = join(options.dir, 'records');
  }

  private blobPath(digest: string): string {
    if (!SHA256_HEX.test(digest)) throw new FlotillaError('BAD_REQUEST', `not a sha256 digest: ${digest}`);
    return join(this.blobDir, digest);
  }

  async has(digest: string): Promise<boolean> {
    try {
      await stat(this.blobPath(digest));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  async get(digest: string): Promise<Uint8Array | null> {
    const path = this.blobPath(digest);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
    if (sha256Hex(bytes) !== digest) {
      await rm(path, { force: true });
      return null;
    }
    return bytes;
  }

  async put(digest: string, bytes: Uint8Array): Promise<void> {
    assertDigest(digest, bytes);
    await mkdir(this.blobDir, { recursive: true });
    await atomicWrite(this.blobPath(digest), bytes);
  }

  async delete(digest: string): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
  }

  async readRecord(name: string): Promise<string | null> {
    assertRecordName(name);
    try {
      return await readFile(join(this.recordDir, name), 'utf8');
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async writeRecord(name: string, text: string): Promise<void> {
    assertRecordName(name);
    await mkdir(this.recordDir, { recursive: true });
    await atomicWrite(join(this.recordDir, name), text);
  }
}

async function atomicWrite(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === 'ENOENT';
}
