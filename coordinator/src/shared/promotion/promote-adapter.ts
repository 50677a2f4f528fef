import {
  SIGNING_DOMAINS,
  adapterConfigFromSpec,
  canonicalJson,
  encodeFloat32Tensors,
  encodeInt8Delta,
  f32At,
  manifestDigest,
  sha256Hex,
  signPayload,
  toBase64,
  utf8,
  type AdapterManifest,
  type ArtifactSet,
  type Int8Tensor,
  type SignedManifest,
  type SigningKeyPair,
  type TaskDefinition,
} from '@flotilla/protocol';
import type { AdapterRegistry } from '../adapter-registry.js';
import type { BlobStore } from '../blob-store/index.js';
import { changedTensors, subtractTensors, type TensorMap } from './tensor-math.js';

export interface PromotionInput {
  task: TaskDefinition;
  parentVersion: number;
  parentAdapter: TensorMap;
  adapter: TensorMap;
  /** Round that produced the adapter; null for a rollback. */
  roundId: string | null;
  aggregation: AdapterManifest['aggregation'];
  metrics: Record<string, number>;
  audit: AdapterManifest['audit'];
  privacy: AdapterManifest['privacy'];
  rollbackOf: number | null;
  /** Deterministic timestamp (the round's close time), so a retried job signs identical bytes. */
  createdAt: number;
  blobs: BlobStore;
  registry: AdapterRegistry;
  signingKey: SigningKeyPair;
}

export interface Promotion {
  signed: SignedManifest;
  manifestDigest: string;
  /** False when a retried job found its own promotion already stored. */
  created: boolean;
}

async function storeBlob(blobs: BlobStore, bytes: Uint8Array): Promise<{ digest: string; bytes: number }> {
  const digest = sha256Hex(bytes);
  // Idempotent; on a blob already stored it refreshes the last use garbage collection reads.
  await blobs.put(digest, bytes);
  return { digest, bytes: bytes.length };
}

/**
 * Symmetric per-tensor int8 with round-to-nearest (not stochastic: a retried job must produce
 * the same bytes): scale = max|x| / 127, q = round(x / scale).
 */
function quantizeInt8(tensors: TensorMap): Map<string, Int8Tensor> {
  const out = new Map<string, Int8Tensor>();
  for (const [name, tensor] of tensors) {
    let max = 0;
    for (const v of tensor.values) max = Math.max(max, Math.abs(v));
    const scale = max / 127;
    const quantized = new Int8Array(tensor.values.length);
    if (scale > 0)
      for (let i = 0; i < quantized.length; i++) quantized[i] = Math.round(f32At(tensor.values, i) / scale);
    out.set(name, { shape: [...tensor.shape], quantized, scale });
  }
  return out;
}

/**
 * Writes the tensors in F32 and F16 (and int8 when the task quantizes) so devices fetch the
 * precision their hardware class asks for.
 */
async function storeArtifactSet(
  blobs: BlobStore,
  tensors: TensorMap,
  metadata: Record<string, string>,
  withInt8: boolean,
): Promise<ArtifactSet> {
  const f32 = await storeBlob(blobs, encodeFloat32Tensors(tensors, metadata, 'F32'));
  const f16 = await storeBlob(blobs, encodeFloat32Tensors(tensors, metadata, 'F16'));
  if (!withInt8) return { f32, f16 };
  const int8 = await storeBlob(blobs, encodeInt8Delta(quantizeInt8(tensors), metadata));
  return { f32, f16, int8 };
}

/**
 * Promotes `adapter` as version parentVersion + 1: content-addressed artifacts (full adapter and
 * delta from the parent holding only the tensors that changed, F32 and F16), the PEFT adapter_config.json, and a manifest signed with the
 * coordinator key. Idempotent: a retried job that finds its version already promoted with the
 * same manifest returns it with `created: false`.
 */
export async function promoteAdapter(input: PromotionInput): Promise<Promotion> {
  const version = input.parentVersion + 1;
  const { task } = input;
  // Content only (no version numbers): the same tensors always get the same address, so a
  // rollback re-promotes exactly the old blob.
  const metadata = { 'flotilla.task': task.taskId };
  const withInt8 = task.rounds.quantization === 'int8';
  const adapter = await storeArtifactSet(input.blobs, input.adapter, metadata, withInt8);
  // Version 0 is the seeded initial adapter every device can rebuild, so a delta always exists.
  // It names only the tensors that changed (FFA-LoRA: B), so a device downloads nothing it holds.
  const delta = await storeArtifactSet(
    input.blobs,
    changedTensors(subtractTensors(input.adapter, input.parentAdapter)),
    metadata,
    withInt8,
  );
  const config = adapterConfigFromSpec(task.adapter, task.baseModel.digest);
  const configBlob = await storeBlob(input.blobs, utf8(JSON.stringify(config, null, 2)));
  const manifest: AdapterManifest = {
    taskId: task.taskId,
    version,
    parentVersion: input.parentVersion,
    roundId: input.roundId,
    baseModelDigest: task.baseModel.digest,
    spec: task.adapter,
    adapter,
    delta,
    adapterConfigDigest: configBlob.digest,
    aggregation: input.aggregation,
    metrics: input.metrics,
    audit: input.audit,
    policyDigest: sha256Hex(utf8(canonicalJson(task.policy))),
    privacy: input.privacy,
    expectedCost: { fullBytes: adapter.f32.bytes, deltaBytes: delta.f32.bytes },
    rollbackOf: input.rollbackOf,
    createdAt: input.createdAt,
  };
  const signed: SignedManifest = {
    manifest,
    coordinatorKey: toBase64(input.signingKey.publicKey),
    signature: signPayload(SIGNING_DOMAINS.manifest, manifest, input.signingKey.secretKey),
  };
  const digest = manifestDigest(manifest);
  const existing = await input.registry.getManifest(task.taskId, version);
  if (existing) {
    if (manifestDigest(existing.manifest) === digest)
      return { signed: existing, manifestDigest: digest, created: false };
    // The same round already promoted this version (a retry after a crash, whose recomputed
    // candidate differs only by fresh DP noise): that promotion stands.
    if (input.roundId !== null && existing.manifest.roundId === input.roundId)
      return { signed: existing, manifestDigest: manifestDigest(existing.manifest), created: false };
  }
  await input.registry.putManifest(signed);
  return { signed, manifestDigest: digest, created: true };
}
