import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FlotillaError } from '@flotilla/protocol';
import { resultCode, type LuaScript } from '../../shared/lua-script.js';
import { RESPONDING_STATE } from '../round-machine.js';
import { ROUND_SCRIPTS, TRANSITION_ROUND } from './round-scripts.js';

const HERE = new URL('./', import.meta.url);

function fileOf(script: LuaScript<string>): string {
  return readFileSync(new URL(`${script.name}.lua`, HERE), 'utf8');
}

/** The `--[[ ... ]]` header and the code after it. */
function split(text: string): { header: string; body: string } {
  const end = text.indexOf(']]');
  expect(text.startsWith('--[[') && end > 0).toBe(true);
  return { header: text.slice(0, end), body: text.slice(end + 2) };
}

/** Result codes the header lists under "Returns", name -> number. */
function listedCodes(header: string): Record<string, number> {
  const returns = header.slice(header.indexOf('Returns'));
  const codes: Record<string, number> = {};
  for (const match of returns.matchAll(/^\s*(-?\d+)\s+([A-Z_]+)\b/gm))
    codes[match[2] ?? ''] = Number(match[1]);
  return codes;
}

/** The highest `NAME[n]` index in `text`. */
function highest(text: string, name: 'KEYS' | 'ARGV'): number {
  const indexes = [...text.matchAll(new RegExp(`${name}\\[(\\d+)\\]`, 'g'))].map((m) => Number(m[1]));
  return Math.max(0, ...indexes);
}

describe('round Lua scripts', () => {
  it('are every .lua file of the folder but the includes', () => {
    const files = readdirSync(HERE).filter((name) => name.endsWith('.lua'));
    expect(files.sort()).toEqual(ROUND_SCRIPTS.map((script) => `${script.name}.lua`).sort());
  });

  it.each(ROUND_SCRIPTS.map((script) => [script.name, script] as const))(
    '%s lists in its header the result codes typed on the TypeScript side',
    (_name, script) => {
      expect(listedCodes(split(fileOf(script)).header)).toEqual(script.codes);
    },
  );

  it.each(ROUND_SCRIPTS.map((script) => [script.name, script] as const))(
    '%s lists in its header every KEYS and ARGV entry it reads',
    (_name, script) => {
      const { header, body } = split(fileOf(script));
      expect(highest(header, 'KEYS')).toBeGreaterThanOrEqual(highest(body, 'KEYS'));
      expect(highest(header, 'ARGV')).toBeGreaterThanOrEqual(highest(body, 'ARGV'));
      expect(script.source).not.toContain('@include');
    },
  );

  it('checks the state in which round-machine.ts says a round takes responses', () => {
    const include = readFileSync(new URL('includes/takes-responses.lua', HERE), 'utf8');
    expect(split(include).body).toContain(`== '${RESPONDING_STATE}'`);
  });

  it('turns a number a script does not list into an INTERNAL error', () => {
    expect(resultCode(TRANSITION_ROUND, 1)).toBe('MOVED');
    expect(resultCode(TRANSITION_ROUND, -1)).toBe('FENCED');
    const unlisted = (() => {
      try {
        return resultCode(TRANSITION_ROUND, 7);
      } catch (error) {
        return error;
      }
    })();
    expect(FlotillaError.is(unlisted, 'INTERNAL')).toBe(true);
    expect(() => resultCode(TRANSITION_ROUND, '1')).toThrow(/round-transition\.lua returned 1/);
  });
});
