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

/** A line's position along the log, by which the file is bisected: both grow along the file. */
interface LinePosition {
  seq: number;
  /**
   * The last leaf the line is or covers: a record's `leafIndex`, a tree head's `treeSize − 1`
   * (every record before the head is a leaf below its size); undefined for anything else.
   */
  lastLeaf: number | undefined;
}

const isWholeNumber = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value);

const notARecord = (filePath: string) =>
  new FlotillaError(
    'CORRUPT_FILE',
    `${filePath} holds a line that is not a round-log record; run flotilla audit verify on it`,
  );

function positionOf(line: string, filePath: string): LinePosition {
  let json: { seq?: unknown; leafIndex?: unknown; treeHead?: { treeSize?: unknown } } | undefined;
  try {
    json = JSON.parse(line) as typeof json;
  } catch {
    json = undefined;
  }
  const seq = json?.seq;
  if (!isWholeNumber(seq)) throw notARecord(filePath);
  const treeSize = json?.treeHead?.treeSize;
  const lastLeaf = isWholeNumber(json?.leafIndex)
    ? json.leafIndex
    : isWholeNumber(treeSize)
      ? treeSize - 1
      : undefined;
  return { seq, lastLeaf };
}

/** Byte offset of a line start at or before the first line where `before` no longer holds. */
async function bisect(
  handle: FileHandle,
  size: number,
  before: (position: LinePosition) => boolean,
  filePath: string,
): Promise<number> {
  // Invariant: the wanted line starts after `lo`; probing stops once the gap is one chunk.
  let lo = 0;
  let hi = size;
  while (hi - lo > CHUNK) {
    const mid = Math.floor((lo + hi) / 2);
    const start = await nextLineStart(handle, mid, size);
    const line = start === null ? null : await lineAt(handle, start, size);
    if (start !== null && line !== null && before(positionOf(line, filePath))) lo = start;
    else hi = mid;
  }
  return lo;
}

/**
 * The mirror's lines with seq in [`fromSeq`, `throughSeq`], in file order (a torn last line is
 * left out). Continuity is the caller's to check: this returns what the file holds.
 */
export function readMirrorLines(
  filePath: string,
  fromSeq: number,
  throughSeq: number,
): Promise<RawLogLine[]> {
  return scanMirror(
    filePath,
    (p) => p.seq < fromSeq,
    (p) => (p.seq > throughSeq ? 'stop' : p.seq >= fromSeq),
  );
}

/**
 * The mirror's lines from the first one whose last leaf is `firstLeaf` (a record of that leaf
 * index, or a head just before it) through the record of leaf `firstLeaf + count − 1`, found by
 * bisecting on leaf indexes: the lines of a span of the Merkle tree, for recomputing it.
 */
export function readMirrorLeaves(filePath: string, firstLeaf: number, count: number): Promise<RawLogLine[]> {
  const end = firstLeaf + count;
  const leafOf = (p: LinePosition): number => {
    if (p.lastLeaf === undefined) throw notARecord(filePath);
    return p.lastLeaf;
  };
  return scanMirror(
    filePath,
    (p) => leafOf(p) < firstLeaf,
    (p) => (leafOf(p) >= end ? 'stop' : leafOf(p) >= firstLeaf),
  );
}

/** Reads from the bisected start, keeping the lines `keep` accepts, until it says stop. */
async function scanMirror(
  filePath: string,
  before: (position: LinePosition) => boolean,
  keep: (position: LinePosition) => boolean | 'stop',
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
    let position = await bisect(handle, size, before, filePath);
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
        const at = positionOf(line, filePath);
        const verdict = keep(at);
        if (verdict === 'stop') return out;
        if (verdict) out.push({ seq: at.seq, line });
      }
      carry = buffer;
    }
    return out;
  } finally {
    await handle.close();
  }
}
