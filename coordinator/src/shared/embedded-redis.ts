import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { parseJsonAs } from './parse-json-as.js';

/** Options for a private redis-server child process. */
export interface EmbeddedRedisOptions {
  /** Directory for the AOF and RDB files; created if missing. */
  dataDir: string;
  /** Milliseconds to wait for the server to answer PING. Default 10000. */
  startTimeoutMs?: number;
  /**
   * Unix socket to listen on (at most ~100 bytes). Given, a restart on the same `dataDir` and
   * socket keeps the URL, so clients reconnect to the restarted server; `stop()` leaves its
   * directory alone. Default: `redis.sock` in a new temp directory that `stop()` removes.
   */
  socketPath?: string;
}

export interface EmbeddedRedis {
  /** `unix:///…/redis.sock` */
  url: string;
  /** redis-server's pid. */
  pid: number;
  /** The pid of the supervisor between this process and redis-server. */
  supervisorPid: number;
  /** Stops redis-server (through its supervisor) and waits for both to exit. */
  stop(): Promise<void>;
}

export const REDIS_INSTALL_HINT =
  'redis-server was not found on PATH. Install it, for example:\n' +
  '  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y redis-server\n' +
  '  macOS:         brew install redis\n' +
  'or point Flotilla at an existing server with REDIS_URL=redis://host:6379.';

export function redisServerAvailable(): boolean {
  const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  return probe.status === 0;
}

// Unix socket paths are limited to ~107 bytes, so the socket lives in a short temp dir
// while the data (AOF) stays in the caller's data directory.
function socketDir(): string {
  return mkdtempSync(join(tmpdir(), 'flr-'));
}

function pingOnce(path: string): Promise<boolean> {
  return new Promise((done) => {
    const socket = createConnection({ path });
    socket.once('error', () => done(false));
    socket.once('data', (buf) => {
      socket.destroy();
      done(buf.toString().startsWith('+PONG'));
    });
    socket.once('connect', () => socket.write('PING\r\n'));
  });
}

/**
 * Runs `start` (a spawn) with umask 077, so the files redis-server creates (AOF, RDB) are 0600:
 * a child inherits its parent's umask at spawn. Where the umask cannot be changed (a worker
 * thread), the 0700 data directory alone keeps them from other users.
 */
function withPrivateUmask<T>(start: () => T): T {
  let previous: number | null = null;
  try {
    previous = process.umask(0o077);
  } catch {
    previous = null;
  }
  try {
    return start();
  } finally {
    if (previous !== null) process.umask(previous);
  }
}

/** The supervisor between Flotilla and redis-server (see its header): a POSIX shell script. */
const SUPERVISOR = fileURLToPath(new URL('./redis-supervisor.sh', import.meta.url));

/** How long `stop()` waits for redis-server (and its supervisor) to exit before SIGKILL, in ms. */
const STOP_TIMEOUT_MS = 15_000;

/** Reads the supervisor's `{"pid":…}` line; rejects if it exits first. */
function redisPidOf(supervisor: ChildProcess, stderr: () => string): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      const newline = buffer.indexOf('\n');
      if (newline < 0) return;
      supervisor.stdout?.off('data', onData);
      const line = buffer.slice(0, newline);
      const started = parseJsonAs(z.object({ pid: z.number().int().positive() }), line);
      if (started !== null) resolve(started.pid);
      else reject(new Error(`the redis supervisor said ${line}`));
    };
    supervisor.stdout?.on('data', onData);
    supervisor.once('exit', () => reject(new Error(`redis-server did not start: ${stderr().trim()}`)));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts a private redis-server (unix socket only, AOF on) that cannot outlive this process: it
 * runs under a small supervisor (`redis-supervisor.sh`) that stops it as soon as this process
 * is gone, even after a SIGKILL or a crash, because the supervisor's stdin pipe then closes.
 */
export async function startEmbeddedRedis(options: EmbeddedRedisOptions): Promise<EmbeddedRedis> {
  if (!redisServerAvailable()) throw new Error(REDIS_INSTALL_HINT);
  const dataDir = resolve(options.dataDir);
  // The AOF holds every blob (Redis blob store), session hash and round record: owner-only.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
  const sockDir = options.socketPath === undefined ? socketDir() : null;
  const sockPath = options.socketPath ?? join(sockDir ?? '', 'redis.sock');
  const redisArgs = [
    '--port',
    '0',
    '--unixsocket',
    sockPath,
    '--unixsocketperm',
    '700',
    '--dir',
    dataDir,
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--save',
    '',
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
  ];
  // stdin stays open and unwritten for the whole life of this process: its closing is the signal.
  // Under umask 077 (inherited by the supervisor, then by redis-server).
  const supervisor: ChildProcess = withPrivateUmask(() =>
    spawn('/bin/sh', [SUPERVISOR, ...redisArgs], { stdio: ['pipe', 'pipe', 'pipe'] }),
  );
  supervisor.stdin?.on('error', () => undefined);
  let stderr = '';
  supervisor.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((done) => supervisor.once('exit', () => done()));
  const running = () => supervisor.exitCode === null && supervisor.signalCode === null;
  const killAll = (pid: number | null) => {
    if (pid !== null && alive(pid)) process.kill(pid, 'SIGKILL');
    if (running() && supervisor.pid !== undefined) process.kill(supervisor.pid, 'SIGKILL');
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  let pid: number | null = null;
  try {
    pid = await redisPidOf(supervisor, () => stderr);
    while (!(existsSync(sockPath) && (await pingOnce(sockPath)))) {
      if (!running()) throw new Error(`redis-server exited at start: ${stderr.trim()}`);
      if (Date.now() > deadline)
        throw new Error(`redis-server did not answer PING within the start timeout: ${stderr.trim()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  } catch (error) {
    killAll(pid);
    if (sockDir !== null) rmSync(sockDir, { recursive: true, force: true });
    throw error;
  }
  const redisPid = pid;

  return {
    url: `unix://${sockPath}`,
    pid: redisPid,
    supervisorPid: supervisor.pid ?? 0,
    async stop() {
      // Closing the pipe is what a crash of this process would do: the supervisor stops
      // redis-server (SIGTERM, AOF flushed) and exits after it.
      if (running()) {
        supervisor.stdin?.end();
        const timer = setTimeout(() => killAll(redisPid), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      if (sockDir !== null) rmSync(sockDir, { recursive: true, force: true });
    },
  };
}
