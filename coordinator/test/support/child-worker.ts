import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SOURCE_CONDITION } from '../../src/shared/ts-worker.js';
import { collectChildOutput, killChild } from './child-output.js';

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

/**
 * The environment of a worker process on `prefix` and `stateDir`; `fastLocks` shortens BullMQ's
 * lock (2 s) and stalled-job check (1 s) so a killed worker's job is taken over soon.
 */
export function workerProcessEnv(options: {
  redisUrl: string;
  prefix: string;
  stateDir: string;
  fastLocks?: boolean;
}): Record<string, string> {
  return {
    REDIS_URL: options.redisUrl,
    FLOTILLA_PREFIX: options.prefix,
    FLOTILLA_STATE_DIR: options.stateDir,
    LOG_LEVEL: 'info',
    ...(options.fastLocks ? { FLOTILLA_LOCK_DURATION_MS: '2000', FLOTILLA_STALLED_INTERVAL_MS: '1000' } : {}),
  };
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
  collectChildOutput(child, logs, (line) => {
    parsed.push(line);
    for (const listener of listeners) listener();
  });
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
    kill: () => killChild(child, pid, exited),
  };
}
