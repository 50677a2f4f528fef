import type { SafetensorsDtype } from './dtypes.js';

/**
 * One tensor: dtype, shape (row-major, `[]` is a scalar of one element) and its raw little-endian
 * bytes. `data` from the decoder is a view into the decoded file: callers must not mutate it.
 */
export interface TensorEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array;
}

export interface SafetensorsFile {
  tensors: Map<string, TensorEntry>;
  /** The header's `__metadata__` string map (empty when the file has none). */
  metadata: Record<string, string>;
}

export interface DecodeSafetensorsOptions {
  /**
   * Largest JSON header accepted, in bytes. Default 100_000_000, the reference implementation's
   * `MAX_HEADER_SIZE`; lower it for untrusted uploads.
   */
  maxHeaderBytes?: number;
}

/** Key of the free-form string map in the header. */
export const METADATA_KEY = '__metadata__';
