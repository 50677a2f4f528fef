import type { ChildProcess } from 'node:child_process';

// What the tests' child processes (coordinator and worker main.ts) share: their pino JSON output
// read line by line, and SIGKILL by pid.

/**
 * Appends the child's stdout lines and stderr chunks to `logs` in arrival order, and hands each
 * stdout line that parses as JSON to `onJson`.
 */
export function collectChildOutput(
  child: ChildProcess,
  logs: string[],
  onJson: (line: Record<string, unknown>) => void,
): void {
  let buffer = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      logs.push(line);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // not a JSON log line
      }
      onJson(parsed);
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => logs.push(chunk.toString()));
}

/** SIGKILL to `pid` unless the child has exited already, then waits for `exited`. */
export async function killChild(child: ChildProcess, pid: number, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
  await exited;
}
