import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FlotillaError } from '../errors.js';

/**
 * A pass-through stream that hashes what flows through it: pipe an upload through it to a file
 * and compare `digestHex()` with the claimed content address, without holding the blob in memory.
 */
export class Sha256Stream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private digest: string | null = null;
  /** Bytes seen so far. */
  bytes = 0;

  override _transform(chunk: Buffer | string, encoding: BufferEncoding, callback: TransformCallback): void {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
    this.hash.update(buffer);
    this.bytes += buffer.length;
    callback(null, buffer);
  }

  override _flush(callback: TransformCallback): void {
    this.digest = this.hash.digest('hex');
    callback();
  }

  /** Lowercase hex SHA-256 of everything written; only after the stream has ended. */
  digestHex(): string {
    if (this.digest === null)
      throw new FlotillaError('INTERNAL', 'Sha256Stream.digestHex() called before the stream ended');
    return this.digest;
  }
}

export function createSha256Stream(): Sha256Stream {
  return new Sha256Stream();
}

/** Lowercase hex SHA-256 of a file, read as a stream (constant memory). */
export async function sha256FileHex(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) hash.update(chunk);
  });
  return hash.digest('hex');
}
