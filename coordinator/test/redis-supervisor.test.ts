// The supervisor between a Flotilla process and its private redis-server
// (src/shared/redis-supervisor.sh), run on its own against a real redis-server: its protocol (the
// pid line, the exit codes), every way it stops redis-server (stdin closed, SIGTERM, SIGINT, the
// SIGKILL after the grace period), and that it stays small (the reason it is a shell script).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { processAlive, waitFor } from './support/index.js';

const SUPERVISOR = fileURLToPath(new URL('../src/shared/redis-supervisor.sh', import.meta.url));
/** Generous: redis-server shuts down in milliseconds; this bounds a loaded machine. */
const GONE_WITHIN_MS = 20_000;

interface Supervised {
  supervisor: ChildProcess;
  /** redis-server's pid, from the supervisor's first stdout line. */
  redisPid: Promise<number>;
  exited: Promise<{ code: number | null; stderr: string }>;
  socket: string;
}

describe('redis-supervisor.sh', () => {
  const dirs: string[] = [];
  const pids: number[] = [];
  afterAll(() => {
    // Whatever a failed assertion left running, stopped by its own pid.
    for (const pid of pids) if (processAlive(pid)) process.kill(pid, 'SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  function supervise(env: NodeJS.ProcessEnv = process.env): Supervised {
    const dir = mkdtempSync(join(tmpdir(), 'flr-sup-'));
    dirs.push(dir);
    const socket = join(dir, 'redis.sock');
    const args = ['--port', '0', '--unixsocket', socket, '--dir', dir, '--save', ''];
    const supervisor = spawn('/bin/sh', [SUPERVISOR, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
    if (supervisor.pid !== undefined) pids.push(supervisor.pid);
    let stderr = '';
    supervisor.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const redisPid = new Promise<number>((resolve, reject) => {
      supervisor.stdout?.once('data', (chunk: Buffer) => {
        const { pid } = JSON.parse(chunk.toString()) as { pid: number };
        pids.push(pid);
        resolve(pid);
      });
      supervisor.once('exit', () => reject(new Error(`the supervisor exited first: ${stderr}`)));
    });
    const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
      supervisor.once('exit', (code) => resolve({ code, stderr })),
    );
    // Awaited by the tests that expect a pid; the one without a redis-server expects none.
    redisPid.catch(() => undefined);
    return { supervisor, redisPid, exited, socket };
  }

  /** redis-server is up once its socket file is there. */
  const listening = (supervised: Supervised) =>
    waitFor(() => existsSync(supervised.socket), GONE_WITHIN_MS, 'redis-server to listen');

  it('prints the pid of a running redis-server and stops it when its stdin closes (exit 0)', async () => {
    const supervised = supervise();
    const { supervisor, redisPid, exited } = supervised;
    const pid = await redisPid;
    // The shell prints the pid of its forked child, which becomes redis-server when it execs: on a
    // loaded machine the pid may still name the shell for a moment, so the name is awaited.
    const comm = () => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    await waitFor(() => comm() === 'redis-server', GONE_WITHIN_MS, `pid ${pid} to be redis-server`);
    expect(comm()).toBe('redis-server');
    await listening(supervised);
    supervisor.stdin?.end();
    expect((await exited).code).toBe(0);
    await waitFor(() => !processAlive(pid), GONE_WITHIN_MS, `redis-server ${pid} to exit`);
  });

  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)('stops redis-server on %s', async (signal) => {
    const supervised = supervise();
    const { supervisor, redisPid, exited } = supervised;
    const pid = await redisPid;
    await listening(supervised);
    supervisor.kill(signal);
    expect((await exited).code).toBe(0);
    expect(processAlive(pid)).toBe(false);
  });

  it('exits with 1 when redis-server is killed by a signal', async () => {
    const { redisPid, exited } = supervise();
    const pid = await redisPid;
    process.kill(pid, 'SIGKILL');
    expect((await exited).code).toBe(1);
  });

  it('exits with 127 and says why when there is no redis-server', async () => {
    const { exited } = supervise({ ...process.env, PATH: '/nonexistent' });
    const { code, stderr } = await exited;
    expect(code).toBe(127);
    expect(stderr).toContain('cannot start redis-server');
  });

  it('kills a redis-server that does not stop within the grace period', async () => {
    const supervised = supervise();
    const { supervisor, redisPid, exited } = supervised;
    const pid = await redisPid;
    await listening(supervised);
    // A stopped process does not act on SIGTERM; only the SIGKILL after the grace period ends it.
    process.kill(pid, 'SIGSTOP');
    supervisor.stdin?.end();
    expect((await exited).code).toBe(1);
    expect(processAlive(pid)).toBe(false);
  });

  it('holds a few MB, not a node process (about 43 MB)', async () => {
    const supervised = supervise();
    const { supervisor, redisPid, exited } = supervised;
    await redisPid;
    await listening(supervised);
    const status = readFileSync(`/proc/${supervisor.pid ?? 0}/status`, 'utf8');
    const peakKb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
    expect(peakKb).toBeGreaterThan(0);
    expect(peakKb).toBeLessThan(8 * 1024);
    supervisor.stdin?.end();
    await exited;
  });
});
