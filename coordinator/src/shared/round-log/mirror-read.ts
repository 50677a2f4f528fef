import { open, type FileHandle } from 'node:fs/promises';
import { FlotillaError, RoundLogLineSchema, type RoundLogLine } from '@flotilla/protocol';

// Reads a span of lines out of a JSONL mirror without reading the whole file: the mirror holds
// one line per seq in order, so the first wanted line is found by bisecting byte offsets (each
// probe parses the line that starts after the probe). A multi-GB mirror costs O(log size) reads
// per page of the audit API instead of a scan from the top.

/** One line of the log as stored: its seq and its exact JSON text. */
export interface RawLogLine {
  seq: number;
  line: string;
}

/** A stored line parsed and checked against the schema (its seq must be the one it is stored under). */
export function parseRawLine({ seq, line }: RawLogLine): RoundLogLine {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    json = undefined;
  }
  const parsed = RoundLogLineSchema.safeParse(json);
  if (!parsed.success || parsed.data.seq !== seq)
    throw new FlotillaError('CORRUPT_FILE', `round-log line ${seq} is not a valid record or tree head`);
  return parsed.data;
}

const CHUNK = 64 * 1024;

/** The complete line (ending in a newline) that starts at `start`, or null at EOF / torn tail. */
async function lineAt(handle: FileHandle, start: number, size: number): Promise<string | null> {
  const parts: Buffer[] = [];
  let position = start;
  while (position < size) {
    const chunk = Buffer.alloc(Math.min(CHUNK, size - position));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
    const newline = chunk.subarray(0, bytesRead).indexOf(0x0a);
    if (newline >= 0) {
      parts.push(chunk.subarray(0, newline));
      return Buffer.concat(parts).toString('utf8');
    }
    parts.push(chunk.subarray(0, bytesRead));
    position += bytesRead;
    if (bytesRead === 0) break;
  }
  return null;
}

/** Offset of the first line that starts at or after `offset` (after the next newline), or null. */
async function nextLineStart(handle: FileHandle, offset: number, size: number): Promise<number | null> {
  if (offset === 0) return 0;
  let position = offset - 1;
  while (position < size) {
    const chunk = Buffer.alloc(Math.min(CHUNK, size - position));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
    const newline = chunk.subarray(0, bytesRead).indexOf(0x0a);
    if (newline >= 0) return position + newline + 1;
    if (bytesRead === 0) break;
    position += bytesRead;
  }
  return null;
}

function seqOf(line: string, filePath: string): number {
  let seq: unknown;
  try {
    seq = (JSON.parse(line) as { seq?: unknown }).seq;
  } catch {
    seq = undefined;
  }
  if (typeof seq !== 'number' || !Number.isInteger(seq))
    throw new FlotillaError(
      'CORRUPT_FILE',
      `${filePath} holds a line that is not a round-log record; run flotilla audit verify on it`,
    );
  return seq;
}

/** Byte offset of a line start at or before the first line whose seq is ≥ `fromSeq`. */
async function bisect(handle: FileHandle, size: number, fromSeq: number, filePath: string): Promise<number> {
  // Invariant: the wanted line starts after `lo`; probing stops once the gap is one chunk.
  let lo = 0;
  let hi = size;
  while (hi - lo > CHUNK) {
    const mid = Math.floor((lo + hi) / 2);
    const start = await nextLineStart(handle, mid, size);
    const line = start === null ? null : await lineAt(handle, start, size);
    if (start !== null && line !== null && seqOf(line, filePath) < fromSeq) lo = start;
    else hi = mid;
  }
  return lo;
}

/**
 * The mirror's lines with seq in [`fromSeq`, `throughSeq`], in file order (a torn last line is
 * left out). Continuity is the caller's to check: this returns what the file holds.
 */
export async function readMirrorLines(
  filePath: string,
  fromSeq: number,
  throughSeq: number,
): Promise<RawLogLine[]> {
  let handle: FileHandle;
  try {
    handle = await open(filePath, 'r');
  } catch (error) {
    throw new FlotillaError('NOT_FOUND', `cannot read the round-log mirror ${filePath}`, { cause: error });
  }
  try {
    const { size } = await handle.stat();
    const out: RawLogLine[] = [];
    let position = await bisect(handle, size, fromSeq, filePath);
    let carry = Buffer.alloc(0);
    while (position < size) {
      const chunk = Buffer.alloc(Math.min(CHUNK, size - position));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      let buffer = Buffer.concat([carry, chunk.subarray(0, bytesRead)]);
      let newline = buffer.indexOf(0x0a);
      while (newline >= 0) {
        const line = buffer.subarray(0, newline).toString('utf8');
        buffer = buffer.subarray(newline + 1);
        newline = buffer.indexOf(0x0a);
        if (line.trim() === '') continue;
        const seq = seqOf(line, filePath);
        if (seq > throughSeq) return out;
        if (seq >= fromSeq) out.push({ seq, line });
      }
      carry = buffer;
    }
    return out;
  } finally {
    await handle.close();
  }
}
