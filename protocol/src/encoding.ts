// Byte encodings used on the wire: digests and nonces are lowercase hex, keys and signatures
// are standard base64 (tweetnacl-util's format). Table lookups, not a `toString`/`parseInt` or a
// Map lookup per byte: the coordinator converts digests, tree nodes, keys and signatures with
// every accepted update (docs/benchmarks.md, ingest).

/** `00` … `ff`, by byte value. */
const HEX_PAIRS: readonly string[] = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** Value of a hex digit by its char code (either case); -1 for any other code below 128. */
const HEX_VALUES = digitTable('0123456789abcdefABCDEF', (i) => (i < 16 ? i : i - 6));

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** Value of a base64 digit by its char code; -1 for any other code below 128. */
const B64_VALUES = digitTable(B64, (i) => i);

function digitTable(digits: string, valueAt: (index: number) => number): Int8Array {
  const table = new Int8Array(128).fill(-1);
  for (let i = 0; i < digits.length; i++) table[digits.charCodeAt(i)] = valueAt(i);
  return table;
}

/** The digit's value in `table`, or -1 when the char is not one of its digits. */
function digitValue(table: Int8Array, code: number): number {
  return code < 128 ? (table[code] as number) : -1;
}

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += HEX_PAIRS[bytes[i] as number] as string;
  return out;
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0) throw new TypeError('invalid hex string');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const high = digitValue(HEX_VALUES, hex.charCodeAt(2 * i));
    const low = digitValue(HEX_VALUES, hex.charCodeAt(2 * i + 1));
    if (high < 0 || low < 0) throw new TypeError('invalid hex string');
    out[i] = (high << 4) | low;
  }
  return out;
}

export function toBase64(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    // The last group may hold one or two bytes: base64 pads it with zero bits.
    const rest = bytes.length - i;
    const n =
      ((bytes[i] as number) << 16) |
      (rest > 1 ? (bytes[i + 1] as number) << 8 : 0) |
      (rest > 2 ? (bytes[i + 2] as number) : 0);
    out += B64.charAt((n >> 18) & 63) + B64.charAt((n >> 12) & 63);
    out += rest > 1 ? B64.charAt((n >> 6) & 63) : '=';
    out += rest > 2 ? B64.charAt(n & 63) : '=';
  }
  return out;
}

export function fromBase64(text: string): Uint8Array {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text))
    throw new TypeError('invalid base64 string');
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    let n = 0;
    // The pattern above leaves only digits and a final '=' or two, which count as zero bits.
    for (let j = 0; j < 4; j++) n = (n << 6) | Math.max(0, digitValue(B64_VALUES, text.charCodeAt(i + j)));
    if (o < out.length) out[o++] = (n >> 16) & 255;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}

/** One encoder for the process: it keeps no state between calls. */
const UTF8_ENCODER = new TextEncoder();

export function utf8(text: string): Uint8Array {
  return UTF8_ENCODER.encode(text);
}
