import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SOURCE_CONDITION } from '../../src/shared/ts-worker.js';
import { testRedisUrl } from '../../../test-support/redis.js';
import { collectChildOutput, killChild } from './child-output.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/server/main.ts', import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface CoordinatorProcessOptions {
  prefix: string;
  stateDir: string;
  operatorToken: string;
  /** Default: the tests' Redis. */
  redisUrl?: string;
  /** Default: a free port on 127.0.0.1. */
  port?: number;
  /** More flags, after the ones above. */
  args?: string[];
}

/** A coordinator process on `prefix` and `stateDir` ({@link startChildCoordinator}), listening. */
export async function startCoordinatorProcess(options: CoordinatorProcessOptions): Promise<ChildCoordinator> {
  const port = options.port ?? (await freePort());
  return startChildCoordinator([
    ...['--redis-url', options.redisUrl ?? testRedisUrl(), '--prefix', options.prefix],
    ...['--state-dir', options.stateDir, '--port', String(port), '--operator-token', options.operatorToken],
    ...(options.args ?? []),
  ]);
}

export interface ChildCoordinator {
  child: ChildProcess;
  pid: number;
  url: string;
  /** The port it listens on. */
  port: number;
  logs: string[];
  /** Sends SIGKILL to this child's pid and waits for it to exit. */
  kill(): Promise<void>;
}

/**
 * Runs `node --conditions=@flotilla/source --import tsx coordinator/src/server/main.ts` with the given flags until it listens.
 * `env` is laid over this process's environment (`undefined` removes a variable).
 */
export async function startChildCoordinator(
  args: string[],
  timeoutMs = 30_000,
  env: Record<string, string | undefined> = {},
): Promise<ChildCoordinator> {
  const child = spawn(
    process.execPath,
    [`--conditions=${SOURCE_CONDITION}`, '--import', 'tsx', MAIN, ...args],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'info', ...env },
    },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error('coordinator child did not start');
  const logs: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      process.kill(pid, 'SIGKILL');
      reject(new Error(`coordinator did not start: ${logs.join('\n')}`));
    }, timeoutMs);
    collectChildOutput(child, logs, (line) => {
      if (line.msg === 'coordinator listening' && typeof line.url === 'string') {
        clearTimeout(timer);
        resolve(line.url);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`coordinator exited with ${String(code)}: ${logs.join('\n')}`));
    });
  });
  return {
    child,
    pid,
    url,
    port: Number(new URL(url).port),
    logs,
    kill: () => killChild(child, pid, exited),
  };
}

/**
 * Pids of the live redis-server processes working in `dataDir` (Linux /proc: redis-server
 * rewrites its command line, but `--dir` makes it chdir there).
 */
export function redisServerPids(dataDir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'redis-server') continue;
      if (readlinkSync(`/proc/${entry}/cwd`) === dataDir && processAlive(Number(entry)))
        pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** True while `pid` names a live process (a zombie, exited but not reaped, counts as gone). */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the parenthesised command name: Z is a zombie, X dead.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
