import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createConnection } from 'node:net';

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
  pid: number;
  /** Stops the child by its own pid and waits for it to exit. */
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

export async function startEmbeddedRedis(options: EmbeddedRedisOptions): Promise<EmbeddedRedis> {
  if (!redisServerAvailable()) throw new Error(REDIS_INSTALL_HINT);
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const sockDir = options.socketPath === undefined ? socketDir() : null;
  const sockPath = options.socketPath ?? join(sockDir ?? '', 'redis.sock');
  const child: ChildProcess = spawn(
    'redis-server',
    [
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
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const pid = child.pid;
  if (pid === undefined) throw new Error('redis-server did not start');
  const exited = new Promise<void>((done) => child.once('exit', () => done()));

  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  while (!(existsSync(sockPath) && (await pingOnce(sockPath)))) {
    if (child.exitCode !== null) throw new Error(`redis-server exited at start: ${stderr.trim()}`);
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      throw new Error(`redis-server did not answer PING within the start timeout: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }

  return {
    url: `unix://${sockPath}`,
    pid,
    async stop() {
      // A child killed by a signal has exitCode null but a signalCode: it is already gone.
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(pid, 'SIGTERM');
        await exited;
      }
      if (sockDir !== null) rmSync(sockDir, { recursive: true, force: true });
    },
  };
}
