import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SOURCE_CONDITION } from '../../src/shared/ts-worker.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/worker/main.ts', import.meta.url));

export interface ChildWorker {
  child: ChildProcess;
  pid: number;
  /** stdout lines (pino JSON) and stderr chunks, in arrival order. */
  logs: string[];
  /** Resolves with the first JSON log line whose `msg` is `msg`. */
  waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (null when killed by a signal) and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL to this child's pid (if still running), then waits for the exit. */
  kill(): Promise<void>;
}

/** Runs `node --conditions=@flotilla/source --import tsx coordinator/src/worker/main.ts` with exactly `env` (plus PATH). */
export function spawnChildWorker(env: Record<string, string>): ChildWorker {
  const child = spawn(process.execPath, [`--conditions=${SOURCE_CONDITION}`, '--import', 'tsx', MAIN], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('worker child did not start');
  const logs: string[] = [];
  const parsed: Array<Record<string, unknown>> = [];
  const listeners = new Set<() => void>();
  let buffer = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      logs.push(line);
      try {
        parsed.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a JSON log line
      }
    }
    for (const listener of listeners) listener();
  });
  child.stderr?.on('data', (chunk: Buffer) => logs.push(chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let done = false;
  void exited.then(() => {
    done = true;
    for (const listener of listeners) listener();
  });

  function waitForLog(msg: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = parsed.find((p) => p.msg === msg);
        if (hit) {
          finish();
          resolve(hit);
        } else if (done) {
          finish();
          reject(new Error(`worker exited before logging "${msg}":\n${logs.join('\n')}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`worker did not log "${msg}" within ${timeoutMs} ms:\n${logs.join('\n')}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });
  }

  return {
    child,
    pid,
    logs,
    waitForLog,
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
      await exited;
    },
  };
}
