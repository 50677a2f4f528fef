import {
  FlotillaError,
  initialAdapterTensors,
  type Eligibility,
  type RoundPlan,
  type TaskDefinition,
} from '@flotilla/protocol';
import type { NamedTensors } from '../cache/adapter-tensors.js';
import type { AdapterStore } from '../cache/adapter-store.js';
import { assertDigest, type BlobCache } from '../cache/blob-cache.js';
import {
  catchUpAdapter,
  type AdapterFetcher,
  type CatchUpResult,
  type LocalAdapter,
} from '../cache/catch-up.js';
import type { DeviceLogger } from './logger.js';

export interface DeviceArtifactsOptions {
  taskId: string;
  cache: BlobCache;
  store: AdapterStore;
  fetcher: AdapterFetcher;
  /** The pinned coordinator key; null until the first challenge pinned it. */
  coordinatorKey: () => string | null;
  computeClass: () => Eligibility['computeClass'];
  /** The verified task, to rebuild version 0 of its adapter when the start-time check did not. */
  fetchTask?: () => Promise<TaskDefinition>;
  logger: DeviceLogger;
}

/**
 * Base model and adapter versions on the device: served from the local content-addressed cache,
 * downloaded and verified when missing. Counts the bytes it downloads.
 */
export class DeviceArtifacts {
  /** Blob bytes downloaded since the last `takeBytesDown()`. */
  private bytesDown = 0;
  /** Serialises adapter changes: a promotion arriving while a plan fetches its adapter waits. */
  private adapterLock: Promise<unknown> = Promise.resolve();
  /** Version 0 of the task's adapter, rebuilt from its signed definition; null until known. */
  private versionZero: LocalAdapter | null = null;

  constructor(private readonly options: DeviceArtifactsOptions) {}

  takeBytesDown(): number {
    const n = this.bytesDown;
    this.bytesDown = 0;
    return n;
  }

  /**
   * The verified task (from the start-time check): version 0 of its adapter (seeded A, zero B) is
   * rebuilt here, so catching up from version 0 walks the deltas — only the tensors that changed,
   * B for FFA-LoRA — instead of downloading the full adapter.
   */
  useTask(task: TaskDefinition): void {
    try {
      const tensors = initialAdapterTensors(task.adapter, task.moduleShapes ?? {});
      this.versionZero = { version: 0, tensors, manifest: null };
    } catch (error) {
      // A task without the shapes of its modules: catch-ups from version 0 fetch the full adapter.
      this.options.logger.debug(
        { err: error },
        'version 0 cannot be rebuilt; catch-ups fetch the full adapter',
      );
    }
  }

  /** The adapter a catch-up starts from: the one held, or the rebuilt version 0 in place of none. */
  private async from(held: LocalAdapter): Promise<LocalAdapter> {
    if (held.version !== 0 || held.tensors.size > 0) return held;
    if (!this.versionZero && this.options.fetchTask) {
      try {
        this.useTask(await this.options.fetchTask());
      } catch (error) {
        this.options.logger.debug({ err: error }, 'task unavailable; catching up with the full adapter');
      }
    }
    return this.versionZero ?? held;
  }

  /** The base model bundle with this digest, from the cache or downloaded and verified. */
  async baseModel(digest: string): Promise<Uint8Array> {
    const cached = await this.options.cache.get(digest);
    if (cached) return cached;
    const bytes = await this.options.fetcher.fetchBlob(digest);
    this.bytesDown += bytes.byteLength;
    assertDigest(digest, bytes);
    await this.options.cache.put(digest, bytes);
    return bytes;
  }

  /**
   * The adapter tensors a plan trains from: version 0 is an empty map (the trainer initialises
   * it); a newer version than the one in service is caught up to and swapped in; an older one
   * is fetched in full without touching the adapter in service.
   */
  adapterFor(plan: RoundPlan): Promise<NamedTensors> {
    return this.exclusive(() => this.adapterForUnlocked(plan));
  }

  private async adapterForUnlocked(plan: RoundPlan): Promise<NamedTensors> {
    const version = plan.adapter.version;
    if (version === 0) return new Map();
    const { store } = this.options;
    let adapter: LocalAdapter | null = null;
    if (store.current.version === version) adapter = store.current;
    else if (store.previous?.version === version) adapter = store.previous;
    else {
      const start: LocalAdapter =
        version > store.current.version ? store.current : { version: 0, tensors: new Map(), manifest: null };
      const result = await this.catchUp(await this.from(start), version);
      if (result.status !== 'updated' || result.adapter.version !== version)
        throw new FlotillaError(
          'NOT_FOUND',
          `adapter version ${version} unavailable: ${result.reason ?? result.status}`,
        );
      adapter = result.adapter;
      if (version > store.current.version) await store.swap(adapter);
    }
    const digest = adapter.manifest?.adapter.f32.digest;
    if (digest !== undefined && plan.adapter.digest !== null && digest !== plan.adapter.digest)
      throw new FlotillaError(
        'DIGEST_MISMATCH',
        `plan names adapter ${plan.adapter.digest}, manifest says ${digest}`,
      );
    return adapter.tensors;
  }

  /** Catches the adapter in service up to the latest signed version; swaps it in when newer. */
  syncLatest(): Promise<CatchUpResult> {
    return this.exclusive(async () => {
      const { store } = this.options;
      const result = await this.catchUp(await this.from(store.current), undefined);
      if (result.status === 'updated') await store.swap(result.adapter);
      return result;
    });
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.adapterLock.then(task, task);
    this.adapterLock = run.catch(() => undefined);
    return run;
  }

  private async catchUp(current: LocalAdapter, targetVersion: number | undefined): Promise<CatchUpResult> {
    const coordinatorKey = this.options.coordinatorKey();
    if (coordinatorKey === null)
      throw new FlotillaError('UNAUTHORIZED', 'no coordinator key pinned yet: cannot verify manifests');
    const result = await catchUpAdapter({
      taskId: this.options.taskId,
      current,
      coordinatorKey,
      fetcher: this.options.fetcher,
      computeClass: this.options.computeClass(),
      cache: this.options.cache,
      logger: this.options.logger,
      ...(targetVersion === undefined ? {} : { targetVersion }),
    });
    this.bytesDown += result.bytesDown;
    return result;
  }
}
