import { assertDigest, assertRecordName, type BlobCache } from '@flotilla/client';

/**
 * The blobs of every simulated device of one host, each stored once by content address (a base
 * model is the same bytes on every device that fetched it). Digests are checked on the way in.
 */
export class SharedBlobStore {
  private readonly blobs = new Map<string, Uint8Array>();

  get(digest: string): Uint8Array | null {
    return this.blobs.get(digest) ?? null;
  }

  put(digest: string, bytes: Uint8Array): void {
    if (this.blobs.has(digest)) return;
    assertDigest(digest, bytes);
    this.blobs.set(digest, bytes.slice());
  }

  /** Bytes held, for memory accounting. */
  get bytes(): number {
    let total = 0;
    for (const blob of this.blobs.values()) total += blob.byteLength;
    return total;
  }
}

/**
 * What a dormant device keeps between its rounds: the digests its own cache holds and its named
 * records (the adapter state). A few hundred bytes, however many versions it went through.
 */
export interface DormantCache {
  digests: Set<string>;
  records: Map<string, string>;
}

export const emptyDormantCache = (): DormantCache => ({ digests: new Set(), records: new Map() });

/**
 * One device's view of the host's shared store: it sees only the blobs it downloaded itself, so
 * a device fetches (and counts) what a real device with its own cache would, while the bytes are
 * kept once per host. Records are the device's own.
 */
export class VirtualDeviceCache implements BlobCache {
  constructor(
    private readonly shared: SharedBlobStore,
    private readonly state: DormantCache,
  ) {}

  has(digest: string): Promise<boolean> {
    return Promise.resolve(this.state.digests.has(digest));
  }

  get(digest: string): Promise<Uint8Array | null> {
    return Promise.resolve(this.state.digests.has(digest) ? this.shared.get(digest) : null);
  }

  put(digest: string, bytes: Uint8Array): Promise<void> {
    return settle(() => {
      this.shared.put(digest, bytes);
      this.state.digests.add(digest);
    });
  }

  delete(digest: string): Promise<void> {
    this.state.digests.delete(digest);
    return Promise.resolve();
  }

  readRecord(name: string): Promise<string | null> {
    return settle(() => {
      assertRecordName(name);
      return this.state.records.get(name) ?? null;
    });
  }

  writeRecord(name: string, text: string): Promise<void> {
    return settle(() => {
      assertRecordName(name);
      this.state.records.set(name, text);
    });
  }
}

/** Runs `work` now; a throw becomes a rejected promise, as callers of an async cache expect. */
function settle<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}
