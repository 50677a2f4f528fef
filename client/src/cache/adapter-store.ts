import { z } from 'zod';
import { AdapterManifestSchema, encodeFloat32Tensors, sha256Hex } from '@flotilla/protocol';
import { cloneTensors, decodeArtifact } from './adapter-tensors.js';
import type { BlobCache } from './blob-cache.js';
import type { LocalAdapter } from './catch-up.js';

const SlotSchema = z.object({
  version: z.number().int().nonnegative(),
  /** Digest of the F32 safetensors file of the applied tensors, in the local cache. */
  tensorsDigest: z.string().nullable(),
  manifest: AdapterManifestSchema.nullable(),
});
type Slot = z.infer<typeof SlotSchema>;

const StateSchema = z.object({ current: SlotSchema, previous: SlotSchema.nullable() });

export interface AdapterStoreOptions {
  cache: BlobCache;
  taskId: string;
}

/**
 * The adapter a device serves, with the previous one kept for rollback. `swap` first writes the
 * new tensors to the content-addressed cache and then replaces the state record in one atomic
 * write, so after a crash the device holds either the old or the new adapter, never a mix.
 */
export class AdapterStore {
  private readonly cache: BlobCache;
  private readonly recordName: string;
  private currentAdapter: LocalAdapter = { version: 0, tensors: new Map(), manifest: null };
  private previousAdapter: LocalAdapter | null = null;

  constructor(options: AdapterStoreOptions) {
    this.cache = options.cache;
    this.recordName = `adapter-${options.taskId}.json`;
  }

  /** The adapter in service (version 0 with no tensors before the first download). */
  get current(): LocalAdapter {
    return this.currentAdapter;
  }

  get previous(): LocalAdapter | null {
    return this.previousAdapter;
  }

  /**
   * Restores the state saved by earlier runs. A state whose blobs are missing or damaged is
   * dropped (the device then starts from version 0 and catches up), never half-loaded.
   */
  async load(): Promise<LocalAdapter> {
    const text = await this.cache.readRecord(this.recordName);
    if (text === null) return this.currentAdapter;
    const parsed = StateSchema.safeParse(safeJson(text));
    if (!parsed.success) return this.currentAdapter;
    const current = await this.restore(parsed.data.current);
    if (!current) return this.currentAdapter;
    this.currentAdapter = current;
    this.previousAdapter = parsed.data.previous ? await this.restore(parsed.data.previous) : null;
    return current;
  }

  /** Makes `next` the adapter in service; the one it replaces becomes `previous`. */
  async swap(next: LocalAdapter): Promise<void> {
    const nextSlot = await this.persist(next);
    const previousSlot = await this.persist(this.currentAdapter);
    await this.cache.writeRecord(
      this.recordName,
      JSON.stringify({ current: nextSlot, previous: previousSlot }),
    );
    this.previousAdapter = this.currentAdapter;
    this.currentAdapter = next;
  }

  /** Goes back to the previous adapter; returns false when there is none. */
  async rollback(): Promise<boolean> {
    const previous = this.previousAdapter;
    if (!previous) return false;
    await this.swap(previous);
    return true;
  }

  private async persist(adapter: LocalAdapter): Promise<Slot> {
    if (adapter.tensors.size === 0)
      return { version: adapter.version, tensorsDigest: null, manifest: adapter.manifest };
    const bytes = encodeFloat32Tensors(adapter.tensors);
    const digest = sha256Hex(bytes);
    if (!(await this.cache.has(digest))) await this.cache.put(digest, bytes);
    return { version: adapter.version, tensorsDigest: digest, manifest: adapter.manifest };
  }

  private async restore(slot: Slot): Promise<LocalAdapter | null> {
    if (slot.tensorsDigest === null)
      return { version: slot.version, tensors: new Map(), manifest: slot.manifest };
    const bytes = await this.cache.get(slot.tensorsDigest);
    if (!bytes) return null;
    return { version: slot.version, tensors: cloneTensors(decodeArtifact(bytes)), manifest: slot.manifest };
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}
