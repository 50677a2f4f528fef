import { FlotillaError } from '../errors.js';

// A strict RFC 8259 parser for the safetensors header. JSON.parse is not enough here: it keeps
// the last of two duplicate keys silently (a file could then hide a tensor), and it turns
// 18446744073709551614 into a float that looks like an integer. This parser refuses duplicate
// keys, keeps numbers as their source text, and bounds nesting so a hostile header cannot
// exhaust the stack.

/** A JSON number kept as its source text, so integers can be checked exactly. */
export class JsonNumber {
  constructor(readonly raw: string) {}
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;
/** Objects keep their key order; keys are unique (duplicates are refused). */
export type JsonObject = Map<string, JsonValue>;

/** Nesting depth limit: a safetensors header needs 3 levels. */
const MAX_DEPTH = 64;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};

class HeaderParser {
  private pos = 0;

  constructor(private readonly text: string) {}

  parseDocument(): JsonValue {
    this.skipWhitespace();
    const value = this.parseValue(0);
    this.skipWhitespace();
    if (this.pos !== this.text.length) this.fail('unexpected content after the JSON value');
    return value;
  }

  private fail(reason: string): never {
    throw new FlotillaError(
      'CORRUPT_FILE',
      `safetensors header is not valid JSON: ${reason} at character ${this.pos}`,
    );
  }

  private skipWhitespace(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else return;
    }
  }

  private parseValue(depth: number): JsonValue {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH}`);
    const c = this.text[this.pos];
    if (c === '{') return this.parseObject(depth);
    if (c === '[') return this.parseArray(depth);
    if (c === '"') return this.parseString();
    if (c === 't') return this.parseLiteral('true', true);
    if (c === 'f') return this.parseLiteral('false', false);
    if (c === 'n') return this.parseLiteral('null', null);
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.parseNumber();
    return this.fail(c === undefined ? 'unexpected end' : `unexpected character ${JSON.stringify(c)}`);
  }

  private parseLiteral<T extends boolean | null>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail('invalid literal');
    this.pos += word.length;
    return value;
  }

  private parseNumber(): JsonNumber {
    NUMBER.lastIndex = this.pos;
    const match = NUMBER.exec(this.text);
    if (match === null) return this.fail('invalid number');
    this.pos += match[0].length;
    return new JsonNumber(match[0]);
  }

  private parseString(): string {
    this.pos++; // opening quote
    let out = '';
    let runStart = this.pos;
    for (;;) {
      const code = this.text.charCodeAt(this.pos);
      if (Number.isNaN(code)) this.fail('unterminated string');
      if (code === 0x22) {
        out += this.text.slice(runStart, this.pos);
        this.pos++;
        return out;
      }
      if (code < 0x20) this.fail('control character in string');
      if (code !== 0x5c) {
        this.pos++;
        continue;
      }
      out += this.text.slice(runStart, this.pos);
      out += this.parseEscape();
      runStart = this.pos;
    }
  }

  /** Parses one escape starting at the backslash; a \u surrogate must come as a valid pair. */
  private parseEscape(): string {
    const letter = this.text[this.pos + 1];
    if (letter === undefined) return this.fail('unterminated escape');
    const simple = SIMPLE_ESCAPES[letter];
    if (simple !== undefined) {
      this.pos += 2;
      return simple;
    }
    if (letter !== 'u') return this.fail('invalid escape');
    const unit = this.readHex4(this.pos + 2);
    this.pos += 6;
    if (unit >= 0xdc00 && unit <= 0xdfff) return this.fail('lone low surrogate');
    if (unit < 0xd800 || unit > 0xdbff) return String.fromCharCode(unit);
    if (this.text[this.pos] !== '\\' || this.text[this.pos + 1] !== 'u')
      return this.fail('lone high surrogate');
    const low = this.readHex4(this.pos + 2);
    if (low < 0xdc00 || low > 0xdfff) return this.fail('lone high surrogate');
    this.pos += 6;
    return String.fromCharCode(unit, low);
  }

  private readHex4(at: number): number {
    const hex = this.text.slice(at, at + 4);
    if (!HEX4.test(hex)) this.fail('invalid \\u escape');
    return parseInt(hex, 16);
  }

  private parseArray(depth: number): JsonValue[] {
    this.pos++;
    const items: JsonValue[] = [];
    this.skipWhitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return items;
    }
    for (;;) {
      this.skipWhitespace();
      items.push(this.parseValue(depth + 1));
      this.skipWhitespace();
      const c = this.text[this.pos];
      this.pos++;
      if (c === ']') return items;
      if (c !== ',') this.fail('expected , or ] in array');
    }
  }

  private parseObject(depth: number): JsonObject {
    this.pos++;
    const entries: JsonObject = new Map();
    this.skipWhitespace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return entries;
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.pos] !== '"') this.fail('expected a string key');
      const key = this.parseString();
      if (entries.has(key)) {
        throw new FlotillaError(
          'CORRUPT_FILE',
          `safetensors header has the key ${JSON.stringify(key)} twice`,
        );
      }
      this.skipWhitespace();
      if (this.text[this.pos] !== ':') this.fail('expected :');
      this.pos++;
      this.skipWhitespace();
      entries.set(key, this.parseValue(depth + 1));
      this.skipWhitespace();
      const c = this.text[this.pos];
      this.pos++;
      if (c === '}') return entries;
      if (c !== ',') this.fail('expected , or } in object');
    }
  }
}

/** Parses header text; throws FlotillaError('CORRUPT_FILE') on anything but one valid JSON value. */
export function parseHeaderJson(text: string): JsonValue {
  return new HeaderParser(text).parseDocument();
}
