// Issue 15 (critical): the private redis-server a coordinator starts (no REDIS_URL) outlived a
// crashed or SIGKILLed coordinator. Against a coordinator child process on its embedded Redis:
// SIGKILL the coordinator, and its redis-server (and the supervisor between them) is gone within
// a bounded time, its AOF intact; a SIGTERMed coordinator stops it too.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, processAlive, redisServerPids, startChildCoordinator, waitFor } from './support/index.js';
import type { ChildCoordinator } from './support/index.js';

/** Generous: redis-server shuts down in milliseconds; this bounds a loaded machine. */
const GONE_WITHIN_MS = 20_000;

interface EmbeddedPids {
  pid: number;
  /** redis-server's parent: the coordinator itself, or whatever it put in between. */
  parentPid: number;
}

function parentPid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // After the parenthesised command name: state, then the parent's pid.
  const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
  return Number(ppid);
}

describe('the embedded redis-server does not outlive its coordinator', () => {
  const dirs: string[] = [];
  const children: ChildCoordinator[] = [];
  const leftovers: number[] = [];
  afterAll(async () => {
    for (const child of children) await child.kill();
    // Whatever a failed assertion left behind, stopped by its own pid.
    for (const pid of leftovers) if (processAlive(pid)) process.kill(pid, 'SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  async function start(): Promise<{ child: ChildCoordinator; dataDir: string; pids: EmbeddedPids }> {
    const stateDir = mkdtempSync(join(tmpdir(), 'flotilla-orphan-'));
    dirs.push(stateDir);
    // No --redis-url and no REDIS_URL: the coordinator starts its own redis-server.
    const child = await startChildCoordinator(
      ['--state-dir', stateDir, '--port', String(await freePort())],
      30_000,
      { REDIS_URL: undefined },
    );
    children.push(child);
    const dataDir = join(stateDir, 'redis');
    const [pid, ...others] = redisServerPids(dataDir);
    expect(pid, 'a redis-server working in <state-dir>/redis').toBeDefined();
    expect(others).toEqual([]);
    const pids = { pid: pid ?? 0, parentPid: parentPid(pid ?? 0) };
    leftovers.push(pids.pid);
    if (pids.parentPid !== child.pid) leftovers.push(pids.parentPid);
    expect((await fetch(`${child.url}/healthz`)).status).toBe(200);
    return { child, dataDir, pids };
  }

  it('a SIGKILLed coordinator leaves no redis-server behind', async () => {
    const { child, dataDir, pids } = await start();
    await child.kill();
    await waitFor(() => !processAlive(pids.pid), GONE_WITHIN_MS, `redis-server ${pids.pid} to exit`);
    await waitFor(() => !processAlive(pids.parentPid), GONE_WITHIN_MS, "redis-server's parent to exit");
    expect(redisServerPids(dataDir)).toEqual([]);
    // Stopped with SIGTERM, so it flushed its append-only file on the way out.
    expect(existsSync(join(dataDir, 'appendonlydir'))).toBe(true);
  });

  it('a SIGTERMed coordinator stops its redis-server before it exits', async () => {
    const { child, dataDir, pids } = await start();
    const exited = new Promise<number | null>((resolve) => child.child.once('exit', resolve));
    process.kill(child.pid, 'SIGTERM');
    expect(await exited).toBe(0);
    await waitFor(() => !processAlive(pids.pid), GONE_WITHIN_MS, `redis-server ${pids.pid} to exit`);
    expect(redisServerPids(dataDir)).toEqual([]);
  });
});
