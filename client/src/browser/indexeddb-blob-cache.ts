import { assertDigest, assertRecordName, type BlobCache } from '../cache/blob-cache.js';
import { idbDelete, idbGet, idbHas, idbPut, openDatabase, type IdbHandle } from './indexeddb.js';

export interface IndexedDbBlobCacheOptions {
  /** Database name. Default `flotilla-cache`. */
  database?: string;
  factory?: IDBFactory;
}

const BLOBS = 'blobs';
const RECORDS = 'records';

/**
 * Browser blob cache: base models and adapters by SHA-256 in IndexedDB, so a browser device
 * that comes back after weeks catches up from what it already holds (offline first).
 */
export class IndexedDbBlobCache implements BlobCache {
  private handle: Promise<IdbHandle> | null = null;

  constructor(private readonly options: IndexedDbBlobCacheOptions = {}) {}

  private open(): Promise<IdbHandle> {
    this.handle ??= openDatabase(
      this.options.database ?? 'flotilla-cache',
      [BLOBS, RECORDS],
      this.options.factory,
    );
    return this.handle;
  }

  async has(digest: string): Promise<boolean> {
    return idbHas(await this.open(), BLOBS, digest);
  }

  async get(digest: string): Promise<Uint8Array | null> {
    const raw = await idbGet(await this.open(), BLOBS, digest);
    if (!(raw instanceof Uint8Array)) return null;
    // Re-check on read: storage outside our control (extensions, disk faults) must not feed a model.
    assertDigest(digest, raw);
    return raw;
  }

  async put(digest: string, bytes: Uint8Array): Promise<void> {
    assertDigest(digest, bytes);
    await idbPut(await this.open(), BLOBS, digest, bytes.slice());
  }

  async delete(digest: string): Promise<void> {
    await idbDelete(await this.open(), BLOBS, digest);
  }

  async readRecord(name: string): Promise<string | null> {
    assertRecordName(name);
    const raw = await idbGet(await this.open(), RECORDS, name);
    return typeof raw === 'string' ? raw : null;
  }

  async writeRecord(name: string, text: string): Promise<void> {
    assertRecordName(name);
    await idbPut(await this.open(), RECORDS, name, text);
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    if (handle) (await handle).close();
  }
}
