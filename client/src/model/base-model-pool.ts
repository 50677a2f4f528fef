import { sha256Hex } from '@flotilla/protocol';
import type * as tf from '@tensorflow/tfjs';
import { loadBaseModel } from './base-bundle.js';

/** Options for {@link BaseModelPool}. */
export interface BaseModelPoolOptions {
  /** Distinct base models kept loaded; the least recently used is disposed past it. Default 2. */
  limit?: number;
}

/**
 * Base models loaded once and shared by several trainers of one process (simulated devices of a
 * thread, or several tasks of one device). Trainers only read a base: adapters live beside it.
 * Bundles are keyed by SHA-256; the same byte array seen again is recognised without rehashing.
 */
export class BaseModelPool {
  private readonly limit: number;
  /** digest → model, in order of last use. */
  private readonly models = new Map<string, Promise<tf.LayersModel>>();
  private readonly digests = new WeakMap<Uint8Array, string>();

  constructor(options: BaseModelPoolOptions = {}) {
    this.limit = Math.max(1, options.limit ?? 2);
  }

  /** The model of a `tfjs-layers-bundle`; do not dispose it (the pool does). */
  get(bundle: Uint8Array): Promise<tf.LayersModel> {
    let digest = this.digests.get(bundle);
    if (digest === undefined) {
      digest = sha256Hex(bundle);
      this.digests.set(bundle, digest);
    }
    const hit = this.models.get(digest);
    if (hit) {
      this.models.delete(digest);
      this.models.set(digest, hit);
      return hit;
    }
    const loading = loadBaseModel(bundle);
    // A bundle that fails to load is not kept: the next caller gets the error afresh.
    loading.catch(() => this.models.delete(digest));
    this.models.set(digest, loading);
    while (this.models.size > this.limit) {
      const [oldest, model] = this.models.entries().next().value ?? [];
      if (oldest === undefined || !model) break;
      this.models.delete(oldest);
      void model.then((m) => m.dispose()).catch(() => undefined);
    }
    return loading;
  }

  /** Disposes every model. */
  dispose(): void {
    for (const model of this.models.values()) void model.then((m) => m.dispose()).catch(() => undefined);
    this.models.clear();
  }
}
