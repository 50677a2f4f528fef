import { z } from 'zod';
import { canonicalJson } from './canonical-json.js';
import { FlotillaError } from './errors.js';
import { utf8 } from './encoding.js';

/**
 * The `tfjs-layers-bundle` blob: one self-contained file for a base model.
 *
 *   bytes 0..7   ASCII magic `FLTLB\x00\x01\x00` (format, version 1)
 *   bytes 8..11  header length H, u32 little-endian
 *   bytes 12..   H bytes of RFC 8785 canonical JSON { format, modelTopology, weightSpecs, weightBytes }
 *   then         `weightBytes` bytes of weight data, in `weightSpecs` order (tfjs layout, little-endian)
 *
 * Canonical JSON and the absence of timestamps make the bytes a pure function of topology and
 * weights, so the blob's SHA-256 is a content address. This codec needs no tfjs: the worker reads
 * base kernels from it to measure adapter drift.
 */
const MAGIC = new Uint8Array([0x46, 0x4c, 0x54, 0x4c, 0x42, 0x00, 0x01, 0x00]);
const PREFIX_BYTES = MAGIC.length + 4;
/** Largest header accepted (bytes); a topology is a few kB, this stops absurd allocations. */
export const MAX_BUNDLE_HEADER_BYTES = 16 * 1024 * 1024;

export const BundleWeightSpecSchema = z
  .object({
    name: z.string(),
    shape: z.array(z.number().int().nonnegative()),
    dtype: z.enum(['float32', 'int32', 'bool', 'string', 'complex64']),
  })
  .loose();
export type BundleWeightSpec = z.infer<typeof BundleWeightSpecSchema>;

export const BundleHeaderSchema = z.object({
  format: z.literal('tfjs-layers-bundle'),
  modelTopology: z.record(z.string(), z.unknown()),
  weightSpecs: z.array(BundleWeightSpecSchema),
  weightBytes: z.number().int().nonnegative(),
});
export type BundleHeader = z.infer<typeof BundleHeaderSchema>;

export function encodeBaseBundle(options: {
  modelTopology: Record<string, unknown>;
  weightSpecs: BundleWeightSpec[];
  weightData: Uint8Array;
}): Uint8Array {
  const header = utf8(
    canonicalJson({
      format: 'tfjs-layers-bundle',
      modelTopology: options.modelTopology,
      weightSpecs: options.weightSpecs,
      weightBytes: options.weightData.byteLength,
    }),
  );
  const out = new Uint8Array(PREFIX_BYTES + header.byteLength + options.weightData.byteLength);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(MAGIC.length, header.byteLength, true);
  out.set(header, PREFIX_BYTES);
  out.set(options.weightData, PREFIX_BYTES + header.byteLength);
  return out;
}

/** Parses a bundle; throws FlotillaError('CORRUPT_FILE') on any malformation. `weightData` is a copy. */
export function decodeBaseBundle(bytes: Uint8Array): { header: BundleHeader; weightData: Uint8Array } {
  if (bytes.byteLength < PREFIX_BYTES || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new FlotillaError('CORRUPT_FILE', 'not a tfjs-layers-bundle (bad magic)');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = view.getUint32(MAGIC.length, true);
  if (headerBytes > MAX_BUNDLE_HEADER_BYTES || PREFIX_BYTES + headerBytes > bytes.byteLength) {
    throw new FlotillaError('CORRUPT_FILE', 'tfjs-layers-bundle header length out of range');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(
        bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerBytes),
      ),
    );
  } catch {
    throw new FlotillaError('CORRUPT_FILE', 'tfjs-layers-bundle header is not valid UTF-8 JSON');
  }
  const header = BundleHeaderSchema.safeParse(parsed);
  if (!header.success)
    throw new FlotillaError('CORRUPT_FILE', `tfjs-layers-bundle header invalid: ${header.error.message}`);
  const start = PREFIX_BYTES + headerBytes;
  if (bytes.byteLength - start !== header.data.weightBytes) {
    throw new FlotillaError(
      'CORRUPT_FILE',
      'tfjs-layers-bundle weight data length does not match its header',
    );
  }
  return { header: header.data, weightData: bytes.slice(start) };
}

/** The float32 weights of a bundle by tfjs weight name (e.g. `hidden/kernel`, [in, out]). */
export function bundleFloat32Weights(
  bytes: Uint8Array,
): Map<string, { shape: number[]; values: Float32Array }> {
  const { header, weightData } = decodeBaseBundle(bytes);
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  const view = new DataView(weightData.buffer, weightData.byteOffset, weightData.byteLength);
  let offset = 0;
  for (const spec of header.weightSpecs) {
    const count = spec.shape.reduce((p, d) => p * d, 1);
    if (spec.dtype !== 'float32' && spec.dtype !== 'int32') {
      throw new FlotillaError(
        'CORRUPT_FILE',
        `bundle weight ${spec.name}: dtype ${spec.dtype} is not supported`,
      );
    }
    if (offset + count * 4 > weightData.byteLength)
      throw new FlotillaError('CORRUPT_FILE', `bundle weight ${spec.name} runs past the data`);
    if (spec.dtype === 'float32') {
      const values = new Float32Array(count);
      for (let i = 0; i < count; i++) values[i] = view.getFloat32(offset + i * 4, true);
      out.set(spec.name, { shape: [...spec.shape], values });
    }
    offset += count * 4;
  }
  return out;
}
