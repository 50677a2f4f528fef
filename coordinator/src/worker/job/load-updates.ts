import {
  FlotillaError,
  decodeDeltaFile,
  sha256Hex,
  type ErrorCode,
  type TaskDefinition,
} from '@flotilla/protocol';
import type { BlobStore } from '../../shared/blob-store/index.js';
import type { AggregateUpdateRef } from '../../shared/queues.js';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';
import { firstNonFinite } from '../strategies/checks.js';

export interface LoadedUpdate {
  ref: AggregateUpdateRef;
  delta: TensorMap;
}

export interface ExcludedUpdate {
  ref: AggregateUpdateRef;
  code: ErrorCode;
  reason: string;
}

/** The names and shapes every delta of a round must have (the adapter's). */
export type ExpectedShapes = ReadonlyMap<string, { shape: readonly number[] }>;

/**
 * Fetches and decodes every referenced delta. A bad update (missing or corrupt blob, wrong names
 * or shapes, NaN or Inf) is excluded with a reason; it never poisons the round.
 */
export async function loadUpdates(options: {
  refs: AggregateUpdateRef[];
  blobs: BlobStore;
  /** The adapter the round started from: the names and shapes every delta must have. */
  expected: ExpectedShapes;
  /** Tensors devices do not train (FFA-LoRA's A): absent from a delta means a zero delta. */
  frozen?: ReadonlySet<string>;
}): Promise<{ loaded: LoadedUpdate[]; excluded: ExcludedUpdate[] }> {
  const loaded: LoadedUpdate[] = [];
  const excluded: ExcludedUpdate[] = [];
  const stored = await options.blobs.getMany(options.refs.map((ref) => ref.blobDigest));
  for (const [index, ref] of options.refs.entries()) {
    try {
      const bytes = storedUpdateBlob(ref, stored[index]);
      loaded.push({ ref, delta: checkUpdateBlob(ref, bytes, options.expected, options.frozen ?? new Set()) });
    } catch (error) {
      excluded.push({ ref, ...exclusionReason(error) });
    }
  }
  return { loaded, excluded };
}

/** The code and reason an update is excluded with, from what its fetch or check threw. */
export function exclusionReason(error: unknown): { code: ErrorCode; reason: string } {
  return {
    code: error instanceof FlotillaError ? error.code : 'INTERNAL',
    reason: error instanceof Error ? error.message : String(error),
  };
}

/** The update's blob as the store returned it (`getMany`); BLOB_MISSING when it holds none. */
export function storedUpdateBlob(
  ref: Pick<AggregateUpdateRef, 'blobDigest'>,
  bytes: Uint8Array | null | undefined,
): Uint8Array {
  if (!bytes) throw new FlotillaError('BLOB_MISSING', `blob ${ref.blobDigest} is not in the blob store`);
  return bytes;
}

export interface CheckBlobOptions {
  /**
   * For a caller that only reads the decoded deltas (the shard jobs): F32 tensors stay views of
   * the blob's bytes, and a frozen tensor a device did not send is one zero array per name, shared
   * by every delta checked with the same map, instead of a copy and a fresh array per delta.
   */
  readOnly?: { zeros: Map<string, Float32Array> };
  /**
   * Leave the NaN/Inf check to the caller ({@link nonFiniteTensor}): the shard jobs see it in
   * their float64 sum, and look for the culprit only when the sum is not finite.
   */
  skipFiniteCheck?: boolean;
}

/** Throws DIGEST_MISMATCH unless `bytes` hash to the digest the update was accepted with. */
export function checkBlobDigest(ref: Pick<AggregateUpdateRef, 'blobDigest'>, bytes: Uint8Array): void {
  if (sha256Hex(bytes) !== ref.blobDigest)
    throw new FlotillaError('DIGEST_MISMATCH', `blob ${ref.blobDigest} is corrupt`);
}

/**
 * Checks a fetched blob against its digest and the adapter's names and shapes, and decodes it:
 * a frozen tensor the device did not send becomes zeros, one it sent must be zeros, and every
 * value must be finite. Throws the reason to exclude the update with.
 */
export function checkUpdateBlob(
  ref: Pick<AggregateUpdateRef, 'blobDigest'>,
  bytes: Uint8Array,
  expected: ExpectedShapes,
  frozen: ReadonlySet<string>,
  options: CheckBlobOptions = {},
): TensorMap {
  const { readOnly } = options;
  checkBlobDigest(ref, bytes);
  const file = decodeDeltaFile(bytes, { inPlace: readOnly !== undefined }).tensors;
  for (const name of file.keys()) {
    if (!expected.has(name))
      throw new FlotillaError('SHAPE_MISMATCH', `delta has tensor ${name}, which the adapter does not`);
  }
  for (const [name, tensor] of expected) {
    const got = file.get(name);
    // A frozen tensor (FFA-LoRA's A) is not sent: its delta is zero by construction (and needs
    // none of the checks below).
    if (!got && frozen.has(name)) {
      const size = tensor.shape.reduce((a, b) => a * b, 1);
      let values = readOnly?.zeros.get(name);
      if (values?.length !== size) {
        values = new Float32Array(size);
        readOnly?.zeros.set(name, values);
      }
      file.set(name, { shape: [...tensor.shape], values });
      continue;
    }
    if (!got) throw new FlotillaError('SHAPE_MISMATCH', `delta lacks tensor ${name}`);
    // Refused on arrival too; an update that got past it is excluded here, the round goes on.
    if (frozen.has(name) && got.values.some((v) => v !== 0))
      throw new FlotillaError('BAD_REQUEST', `${name} is frozen, but the delta changes it`);
    if (got.shape.join(',') !== tensor.shape.join(',')) {
      throw new FlotillaError(
        'SHAPE_MISMATCH',
        `${name} has shape [${got.shape.join(', ')}], expected [${tensor.shape.join(', ')}]`,
      );
    }
  }
  if (options.skipFiniteCheck !== true) {
    const name = nonFiniteTensor(file, expected);
    if (name !== null) throw nonFiniteError(name);
  }
  return file;
}

/** The first of the adapter's tensors (in `expected`'s order) whose delta holds NaN or ±Inf, or null. */
export function nonFiniteTensor(delta: TensorMap, expected: ExpectedShapes): string | null {
  for (const name of expected.keys()) {
    const values = delta.get(name)?.values;
    if (values !== undefined && firstNonFinite(values) >= 0) return name;
  }
  return null;
}

/** Why an update with NaN or ±Inf in tensor `name` is excluded. */
export function nonFiniteError(name: string): FlotillaError {
  return new FlotillaError('NON_FINITE', `${name} holds NaN or Inf`);
}

/** FFA-LoRA's A is frozen: devices do not send it, and its delta is zero. */
export function frozenTensors(task: TaskDefinition, current: TensorMap): Set<string> {
  return new Set(
    task.adapter.mode === 'ffa-lora' ? [...current.keys()].filter((n) => n.endsWith('.lora_A.weight')) : [],
  );
}
