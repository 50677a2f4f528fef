// Starting bench child processes (tsx) and stopping them by their own pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface BenchChild {
  child: ChildProcess;
  pid: number;
  stdoutLines: string[];
  stderr: string[];
  /** Resolves with the exit code (null after a signal). */
  exited: Promise<number | null>;
  /** Sends `signal` to this child's pid (if still running) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Runs `node --conditions=@flotilla/source --import tsx <script> ...args` from the repository root, with an IPC channel. */
export function startTsChild(
  script: string,
  args: string[],
  options: { nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = {},
): BenchChild {
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), '--conditions=@flotilla/source', '--import', 'tsx', script, ...args],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...options.env },
    },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${script}`);
  const stdoutLines: string[] = [];
  const stderr: string[] = [];
  let buffer = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    stdoutLines.push(...parts);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr.push(chunk.toString());
    if (stderr.length > 200) stderr.shift();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    pid,
    stdoutLines,
    stderr,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(pid, signal);
        const timer = setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
        }, 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** Waits for the child to exit within `timeoutMs` (else SIGKILL by pid) and returns its stdout lines. */
export async function runToCompletion(child: BenchChild, timeoutMs: number): Promise<string[]> {
  const timer = setTimeout(() => {
    if (child.child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  }, timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  if (code !== 0)
    throw new Error(`child ${child.pid} exited with ${String(code)}: ${child.stderr.join('').slice(-2000)}`);
  return child.stdoutLines;
}

/** The JSON of the child's `BENCH_RESULT <json>` line. */
export function resultLine(lines: readonly string[]): unknown {
  const line = lines.find((l) => l.startsWith('BENCH_RESULT '));
  if (line === undefined) throw new Error('child printed no BENCH_RESULT line');
  return JSON.parse(line.slice('BENCH_RESULT '.length)) as unknown;
}
