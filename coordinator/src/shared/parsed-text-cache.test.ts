import { describe, expect, it } from 'vitest';
import { ParsedTextCache } from './parsed-text-cache.js';

describe('ParsedTextCache', () => {
  it('parses a text once, shares one frozen result, and parses a different text anew', () => {
    let parses = 0;
    const cache = new ParsedTextCache((text: string) => {
      parses++;
      return JSON.parse(text) as { plan: { deadline: number; modules: string[] } };
    });
    const text = '{"plan":{"deadline":5,"modules":["q"]}}';
    const first = cache.get(text);
    expect(cache.get(text)).toBe(first);
    expect(parses).toBe(1);
    // Deeply frozen: a caller cannot change what the next caller gets.
    expect(() => {
      first.plan.deadline = 6;
    }).toThrow(TypeError);
    expect(() => first.plan.modules.push('v')).toThrow(TypeError);
    expect(cache.get('{"plan":{"deadline":7,"modules":[]}}').plan.deadline).toBe(7);
    expect(parses).toBe(2);
  });

  it('keeps the last `capacity` texts and passes parse errors through uncached', () => {
    let parses = 0;
    const cache = new ParsedTextCache((text: string) => {
      parses++;
      return Number(JSON.parse(text));
    }, 2);
    for (const text of ['1', '2', '3']) cache.get(text);
    cache.get('3');
    cache.get('2');
    expect(parses).toBe(3);
    cache.get('1');
    expect(parses).toBe(4);
    expect(() => cache.get('not json')).toThrow(SyntaxError);
    expect(() => cache.get('not json')).toThrow(SyntaxError);
    expect(parses).toBe(6);
  });
});
