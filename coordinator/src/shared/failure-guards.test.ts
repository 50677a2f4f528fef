import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { logFailures } from './failure-guards.js';
import { SOURCE_CONDITION } from './ts-worker.js';

function recorder() {
  const lines: Array<{ fields: Record<string, unknown>; message: string }> = [];
  return {
    lines,
    logger: { error: (fields: Record<string, unknown>, message: string) => lines.push({ fields, message }) },
  };
}

describe('logFailures', () => {
  it('logs a synchronous throw instead of letting it out', () => {
    const { lines, logger } = recorder();
    const listener = logFailures(logger, 'test listener', (value: number) => {
      throw new Error(`bad ${value}`);
    });
    expect(() => listener(3)).not.toThrow();
    expect(lines).toHaveLength(1);
    expect(lines[0]?.message).toBe('test listener failed');
    expect(lines[0]?.fields.err).toBeInstanceOf(Error);
  });

  it('logs a rejection of the promise the listener returns', async () => {
    const { lines, logger } = recorder();
    const listener = logFailures(logger, 'async listener', () => Promise.reject(new Error('later')));
    listener();
    await new Promise((r) => setTimeout(r, 10));
    expect(lines.map((l) => l.message)).toEqual(['async listener failed']);
  });

  it('passes arguments through and stays silent when nothing fails', () => {
    const { lines, logger } = recorder();
    const seen: unknown[] = [];
    logFailures(logger, 'quiet', (a: string, b: number) => seen.push(a, b))('x', 2);
    expect(seen).toEqual(['x', 2]);
    expect(lines).toEqual([]);
  });
});

describe('installProcessGuard', () => {
  it('keeps a process running through an uncaught exception and an unhandled rejection, logging both', async () => {
    const module = fileURLToPath(new URL('./failure-guards.ts', import.meta.url));
    // A process that throws from a timer and drops a rejected promise, then reports it is alive.
    const script = `
      const { installProcessGuard } = await import(${JSON.stringify(module)});
      const guard = installProcessGuard({
        logger: { error: (fields, message) => console.log(JSON.stringify({ kind: fields.kind, message })) },
      });
      setTimeout(() => { throw new Error('boom'); }, 10);
      setTimeout(() => { void Promise.reject(new Error('dropped')); }, 20);
      setTimeout(() => { console.log(JSON.stringify({ alive: true, caught: guard.caught })); guard.uninstall(); }, 200);
    `;
    const child = spawn(
      process.execPath,
      [`--conditions=${SOURCE_CONDITION}`, '--import', 'tsx', '--input-type=module', '-e', script],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const lines = out
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(code).toBe(0);
    expect(lines).toEqual([
      {
        kind: 'uncaughtException',
        message: 'uncaughtException caught by the last-resort guard; still running',
      },
      {
        kind: 'unhandledRejection',
        message: 'unhandledRejection caught by the last-resort guard; still running',
      },
      { alive: true, caught: 2 },
    ]);
  });
});
