import type { ChildProcess } from 'node:child_process';

/** Stops a child process the test started: SIGTERM to its pid, SIGKILL if it is still there after 20 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(child.pid, 'SIGTERM');
  const killer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 20_000);
  await exited;
  clearTimeout(killer);
}
