import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The `flotilla` executable (a Node script). */
export const BIN = fileURLToPath(new URL('../../bin/flotilla.mjs', import.meta.url));

/** Runs the `flotilla` CLI in a child process; resolves with its exit code and output (never rejects). */
export function flotilla(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, ...env }, timeout: timeoutMs },
      (error, stdout, stderr) => {
        const code = error && typeof error.code === 'number' ? error.code : error ? 1 : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * `flotilla coordinator --port 0 …` until it prints its URL (within `readyTimeoutMs`, default 30 s;
 * more when it builds the device page first); `stop()` sends SIGTERM to its pid.
 */
export async function startCliCoordinator(
  args: string[],
  env: Record<string, string | undefined> = {},
  { readyTimeoutMs = 30_000 }: { readyTimeoutMs?: number } = {},
): Promise<{ url: string; pid: number; output: () => string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [BIN, 'coordinator', '--port', '0', ...args], {
    env: { ...process.env, FLOTILLA_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('flotilla coordinator did not start');
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGTERM');
    await exited;
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line in: ${out}`)), readyTimeoutMs);
      child.stdout.on('data', () => {
        const match = /coordinator listening on (\S+)/.exec(out);
        if (match?.[1]) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`coordinator exited ${code}: ${out}`));
      });
    });
    return { url, pid, output: () => out, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
