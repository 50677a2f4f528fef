import { FlotillaError } from '@flotilla/protocol';
import nacl from 'tweetnacl';
import type { SeededRng } from '../model/seeded-rng.js';
import { shuffledIndices } from '../model/seeded-rng.js';
import type { LocalDataset } from '../training/dataset.js';
import { datasetSize, featureSize } from '../training/dataset.js';

/**
 * Past local examples kept against forgetting, encrypted at rest: each example is one record
 * sealed with nacl.secretbox (XSalsa20-Poly1305) under the caller's 32-byte key with a fresh
 * random 24-byte nonce. Plaintext of a record: label (f32 LE) then the features (f32 LE).
 *
 * File format (`saveTo`), version 2: magic `FLTRB\x00\x02\x00`, u32 LE feature count F, u32 LE
 * rank, rank × u32 LE feature shape, u32 LE record count N, then N × (u32 LE sealed length, 24-byte
 * nonce, sealed bytes), then the seal of the file: a 24-byte nonce and nacl.secretbox of the
 * SHA-512 (nacl.hash) of every byte before it. Each record authenticates only itself, so the seal
 * is what binds the records to their positions and their count: a file with a record duplicated,
 * dropped, reordered or taken from another file fails it. Any tampering throws CORRUPT_FILE. (A
 * whole older file sealed with the same key still loads: keep the file where only the device
 * writes.) Version 1 files, whose records were not bound, are refused.
 */
const MAGIC = new Uint8Array([0x46, 0x4c, 0x54, 0x52, 0x42, 0x00, 0x02, 0x00]);
/** Bytes of the file seal: nonce, then the sealed SHA-512 of the body. */
const SEAL_BYTES = nacl.secretbox.nonceLength + nacl.hash.hashLength + nacl.secretbox.overheadLength;

export interface ReplayBufferOptions {
  /** nacl.secretbox key, 32 bytes. Keep it out of the buffer file. */
  key: Uint8Array;
  /** Shape of one example. */
  featureShape: number[];
  /** Most records kept; beyond it the oldest are dropped. Default 10 000. */
  capacity?: number;
}

interface SealedRecord {
  nonce: Uint8Array;
  box: Uint8Array;
}

export class ReplayBuffer {
  private readonly key: Uint8Array;
  readonly featureShape: number[];
  private readonly size: number;
  private readonly capacity: number;
  private records: SealedRecord[] = [];

  constructor(options: ReplayBufferOptions) {
    if (options.key.length !== nacl.secretbox.keyLength) {
      throw new FlotillaError('BAD_REQUEST', `replay key must be ${nacl.secretbox.keyLength} bytes`);
    }
    this.key = Uint8Array.from(options.key);
    this.featureShape = [...options.featureShape];
    this.size = featureSize(this.featureShape);
    this.capacity = options.capacity ?? 10_000;
  }

  /** Number of sealed records held. */
  get length(): number {
    return this.records.length;
  }

  /** Seals and stores every example of `data` (drops the oldest past capacity). */
  add(data: LocalDataset): void {
    const n = datasetSize(data);
    if (featureSize(data.featureShape) !== this.size) {
      throw new FlotillaError('SHAPE_MISMATCH', 'examples do not match the replay buffer feature shape');
    }
    for (let i = 0; i < n; i++) {
      const plain = new Float32Array(this.size + 1);
      plain[0] = data.ys[i] ?? 0;
      plain.set(data.xs.subarray(i * this.size, (i + 1) * this.size), 1);
      const nonce = nacl.randomBytes(nacl.secretbox.nonceLength);
      this.records.push({ nonce, box: nacl.secretbox(new Uint8Array(plain.buffer), nonce, this.key) });
    }
    if (this.records.length > this.capacity)
      this.records = this.records.slice(this.records.length - this.capacity);
  }

  /** Up to n distinct records drawn by `rng`, decrypted. */
  sample(n: number, rng: SeededRng): LocalDataset {
    const count = Math.max(0, Math.min(Math.floor(n), this.records.length));
    const chosen = shuffledIndices(this.records.length, rng).subarray(0, count);
    const xs = new Float32Array(count * this.size);
    const ys = new Int32Array(count);
    chosen.forEach((index, i) => {
      const plain = this.open(this.records[index]);
      ys[i] = plain[0] ?? 0;
      xs.set(plain.subarray(1), i * this.size);
    });
    return { xs, ys, featureShape: [...this.featureShape] };
  }

  /** The sealed file bytes (see the format above). */
  serialize(): Uint8Array {
    const headerWords = 3 + this.featureShape.length;
    const body = this.records.reduce((sum, r) => sum + 4 + r.nonce.length + r.box.length, 0);
    const bodyLength = MAGIC.length + headerWords * 4 + body;
    const out = new Uint8Array(bodyLength + SEAL_BYTES);
    const view = new DataView(out.buffer);
    out.set(MAGIC, 0);
    let at = MAGIC.length;
    const u32 = (v: number): void => {
      view.setUint32(at, v, true);
      at += 4;
    };
    u32(this.size);
    u32(this.featureShape.length);
    this.featureShape.forEach(u32);
    u32(this.records.length);
    for (const record of this.records) {
      u32(record.box.length);
      out.set(record.nonce, at);
      out.set(record.box, at + record.nonce.length);
      at += record.nonce.length + record.box.length;
    }
    const nonce = nacl.randomBytes(nacl.secretbox.nonceLength);
    out.set(nonce, at);
    out.set(nacl.secretbox(nacl.hash(out.subarray(0, bodyLength)), nonce, this.key), at + nonce.length);
    return out;
  }

  /** Replaces the contents with the records of `bytes`, checking every one (CORRUPT_FILE). */
  deserialize(bytes: Uint8Array): void {
    const corrupt = (why: string): FlotillaError =>
      new FlotillaError('CORRUPT_FILE', `replay buffer file: ${why}`);
    if (bytes.length >= MAGIC.length && MAGIC.slice(0, 6).every((b, i) => bytes[i] === b) && bytes[6] === 1)
      throw corrupt('version 1 file: its records are not bound to their positions; create the buffer again');
    if (bytes.length < MAGIC.length + 12 + SEAL_BYTES || MAGIC.some((b, i) => bytes[i] !== b))
      throw corrupt('bad magic');
    const bodyLength = bytes.length - SEAL_BYTES;
    const sealNonce = bytes.subarray(bodyLength, bodyLength + nacl.secretbox.nonceLength);
    const sealed = nacl.secretbox.open(bytes.subarray(bodyLength + sealNonce.length), sealNonce, this.key);
    if (sealed === null || !nacl.verify(sealed, nacl.hash(bytes.subarray(0, bodyLength))))
      throw corrupt(
        'the file seal does not match its records (records added, removed, moved, or the wrong key)',
      );
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = MAGIC.length;
    const u32 = (): number => {
      if (at + 4 > bodyLength) throw corrupt('truncated');
      const v = view.getUint32(at, true);
      at += 4;
      return v;
    };
    const size = u32();
    const rank = u32();
    if (rank > 8) throw corrupt('feature rank out of range');
    const shape = Array.from({ length: rank }, u32);
    if (size !== this.size || featureSize(shape) !== this.size)
      throw corrupt('feature shape does not match this buffer');
    const count = u32();
    const records: SealedRecord[] = [];
    const boxLength = (this.size + 1) * 4 + nacl.secretbox.overheadLength;
    for (let i = 0; i < count; i++) {
      const length = u32();
      if (length !== boxLength || at + nacl.secretbox.nonceLength + length > bodyLength)
        throw corrupt('truncated record');
      const nonce = bytes.slice(at, at + nacl.secretbox.nonceLength);
      const box = bytes.slice(at + nacl.secretbox.nonceLength, at + nacl.secretbox.nonceLength + length);
      at += nacl.secretbox.nonceLength + length;
      const record = { nonce, box };
      this.open(record);
      records.push(record);
    }
    if (at !== bodyLength) throw corrupt('trailing bytes');
    this.records = records;
  }

  /** Writes the sealed records to `path` (Node only). */
  async saveTo(path: string): Promise<void> {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path, this.serialize(), { mode: 0o600 });
  }

  /** Loads sealed records from `path` (Node only); a tampered file throws CORRUPT_FILE. */
  async loadFrom(path: string): Promise<void> {
    const { readFile } = await import('node:fs/promises');
    this.deserialize(new Uint8Array(await readFile(path)));
  }

  private open(record: SealedRecord | undefined): Float32Array {
    if (record === undefined) throw new FlotillaError('INTERNAL', 'replay record index out of range');
    const plain = nacl.secretbox.open(record.box, record.nonce, this.key);
    if (plain === null) {
      throw new FlotillaError(
        'CORRUPT_FILE',
        'replay record failed authentication (tampered, or the wrong key)',
      );
    }
    return new Float32Array(plain.slice().buffer);
  }
}
