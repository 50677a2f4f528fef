import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { FlotillaError } from '@flotilla/protocol';

// Redis Lua scripts kept in their own `.lua` files (after BullMQ's commands/): each opens with a
// header naming its KEYS, its ARGV and the numeric result codes it returns, and those codes are
// given names here, so the TypeScript side compares names, never bare numbers or strings.
// `--- @include "includes/name"` pulls in a shared Lua fragment from the same folder.

const INCLUDE = /^--- @include "([a-z0-9/-]+)"$/gm;

/** A Lua script with the names of its numeric result codes. */
export interface LuaScript<Code extends string> {
  /** File name without `.lua`, for error messages. */
  readonly name: string;
  /** The script with its includes resolved, as sent to Redis. */
  readonly source: string;
  /** Result code name -> the number the script returns for it. */
  readonly codes: Readonly<Record<Code, number>>;
}

/** The text of `<name>.lua` under `folder`, with its includes (each at most once) resolved. */
export function readLuaSource(folder: URL, name: string, included = new Set<string>()): string {
  const text = readFileSync(new URL(`${name}.lua`, folder), 'utf8');
  return text.replace(INCLUDE, (_line, include: string) => {
    if (included.has(include)) return '';
    included.add(include);
    return readLuaSource(folder, include, included);
  });
}

/** Reads `<name>.lua` from `folder` (a URL ending in `/`) with the names of its result codes. */
export function loadLuaScript<Code extends string>(
  folder: URL,
  name: string,
  codes: Record<Code, number>,
): LuaScript<Code> {
  return { name, source: readLuaSource(folder, name), codes };
}

/** The name of the result code `value` returned by `script`; INTERNAL for a number it does not list. */
export function resultCode<Code extends string>(script: LuaScript<Code>, value: unknown): Code {
  for (const [name, code] of Object.entries<number>(script.codes))
    if (code === value && isCode(script, name)) return name;
  throw new FlotillaError('INTERNAL', `${script.name}.lua returned ${String(value)}, not a listed code`);
}

function isCode<Code extends string>(script: LuaScript<Code>, name: string): name is Code {
  return Object.hasOwn(script.codes, name);
}

/** The `{code, count}` reply of a script that returns a code with a number: names the code. */
export function codeWithCount<Code extends string>(
  script: LuaScript<Code>,
  reply: unknown,
): { code: Code; count: number } {
  const pair = CodeWithCountSchema.safeParse(reply);
  if (!pair.success)
    throw new FlotillaError(
      'INTERNAL',
      `${script.name}.lua returned ${JSON.stringify(reply)}, not {code, count}`,
    );
  const [code, count] = pair.data;
  return { code: resultCode(script, code), count };
}

const CodeWithCountSchema = z.tuple([z.number().int(), z.number().int()]);
