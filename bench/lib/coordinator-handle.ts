// Parent side of the coordinator child: start it, send IPC commands, stop it by its pid.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './measure.js';
import { startTsChild, type BenchChild } from './child.js';
import {
  CoordinatorReplySchema,
  MemorySchema,
  ReadyLineSchema,
  type CoordinatorCommandInput,
  type Memory,
} from './coordinator-ipc.js';

const SCRIPT = fileURLToPath(new URL('../children/coordinator-child.ts', import.meta.url));

export interface CoordinatorHandle {
  url: string;
  pid: number;
  call(command: CoordinatorCommandInput, timeoutMs?: number): Promise<unknown>;
  memory(): Promise<Memory>;
  /** The end of what the child wrote to stderr, and its exit code once it has exited: for a report of what went wrong. */
  diagnostics(): string;
  /** SIGTERM to the child's pid (SIGKILL after 10 s). */
  stop(): Promise<void>;
}

export interface StartCoordinatorOptions {
  redisUrl: string;
  prefix: string;
  stateDir: string;
  /** `coordinator` (createCoordinator) or `worker` (startAggregationWorker only). Default coordinator. */
  role?: 'coordinator' | 'worker';
  /** With role `coordinator`: also run the aggregation worker in the same process. Default false. */
  worker?: boolean;
  /**
   * `node` (default): node:crypto, as createCoordinator installs it; `isomorphic`: tweetnacl and
   * @noble/hashes put back after the coordinator starts, to measure what node:crypto buys.
   */
  crypto?: 'node' | 'isomorphic';
  /**
   * Another checkout of the repository (its root directory, with its node_modules) whose
   * coordinator child to start instead of this one's: two versions measured side by side.
   */
  checkout?: string;
}

export async function startCoordinatorChild(options: StartCoordinatorOptions): Promise<CoordinatorHandle> {
  const args = ['--redis-url', options.redisUrl, '--prefix', options.prefix, '--state-dir', options.stateDir];
  const role = options.role ?? 'coordinator';
  args.push('--role', role === 'coordinator' && options.worker === true ? 'both' : role);
  if (options.crypto === 'isomorphic') args.push('--isomorphic-crypto');
  const script = options.checkout ? join(options.checkout, 'bench/children/coordinator-child.ts') : SCRIPT;
  const child: BenchChild = startTsChild(script, args, {
    // BENCH_CPU_PROF_DIR=<dir> writes V8 CPU profiles of the child (all threads) on exit;
    // BENCH_CHILD_NODE_ARGS adds node flags (space-separated), e.g. `--single-threaded-gc`.
    nodeArgs: [
      '--expose-gc',
      ...(process.env.BENCH_CHILD_NODE_ARGS ? process.env.BENCH_CHILD_NODE_ARGS.split(' ') : []),
      ...(process.env.BENCH_CPU_PROF_DIR
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`]
        : []),
    ],
    env: { LOG_LEVEL: 'silent', FLOTILLA_LOG_LEVEL: 'silent' },
  });
  const deadline = Date.now() + 60_000;
  let ready: { url: string } | null = null;
  while (ready === null) {
    const line = child.stdoutLines.find((l) => l.startsWith('BENCH_READY '));
    if (line !== undefined) ready = ReadyLineSchema.parse(JSON.parse(line.slice('BENCH_READY '.length)));
    else if (child.child.exitCode !== null || Date.now() > deadline) {
      await child.stop('SIGKILL');
      throw new Error(`coordinator child did not start: ${child.stderr.join('').slice(-2000)}`);
    } else await sleep(50);
  }
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.child.on('message', (raw: unknown) => {
    const reply = CoordinatorReplySchema.safeParse(raw);
    if (!reply.success) return;
    const waiter = pending.get(reply.data.id);
    if (waiter === undefined) return;
    pending.delete(reply.data.id);
    if (reply.data.ok) waiter.resolve(reply.data.data);
    else waiter.reject(new Error(reply.data.error));
  });
  let nextId = 1;
  const call = (command: CoordinatorCommandInput, timeoutMs = 120_000): Promise<unknown> => {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`coordinator command ${command.cmd} timed out`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      child.child.send({ ...command, id });
    });
  };
  return {
    url: ready.url,
    pid: child.pid,
    call,
    memory: async () => MemorySchema.parse(await call({ cmd: 'memory' })),
    diagnostics: () => {
      const { exitCode, signalCode } = child.child;
      const exited = exitCode !== null || signalCode !== null ? `exited (${exitCode ?? signalCode}); ` : '';
      return `${exited}stderr: ${child.stderr.join('').slice(-1500).trim() || '(empty)'}`;
    },
    stop: () => child.stop('SIGTERM'),
  };
}
