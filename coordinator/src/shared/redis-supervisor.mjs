// The embedded redis-server's parent: `node redis-supervisor.mjs <redis-server arguments…>`.
//
// Node cannot ask the kernel to signal a child when its parent dies (no prctl(PR_SET_PDEATHSIG)),
// so a Flotilla process that crashes or is SIGKILLed would leave its private redis-server
// running. This process sits between them instead: Flotilla holds the write end of its stdin
// pipe and never writes to it. When Flotilla exits in any way, including SIGKILL, the kernel
// closes that pipe, stdin reaches end-of-file here, and redis-server is stopped by its pid
// (SIGTERM, so the AOF is flushed; SIGKILL after a grace period). Plain JavaScript with no
// dependency, so it starts in tens of milliseconds and runs wherever node and redis-server do.
//
// Protocol: one JSON line `{"pid":<redis-server pid>}` on stdout once redis-server is spawned;
// redis-server's stderr passes through; the exit code is redis-server's (1 if it was signalled,
// 127 if it could not be started). SIGTERM, SIGINT or SIGHUP here also stop redis-server.
import { spawn } from 'node:child_process';

/** How long redis-server gets to shut down after SIGTERM before SIGKILL, in ms. */
const STOP_GRACE_MS = 10_000;

const redis = spawn('redis-server', process.argv.slice(2), { stdio: ['ignore', 'ignore', 'inherit'] });

// A parent that is already gone makes these writes fail with EPIPE: that must not end this
// process before redis-server is stopped.
process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);

redis.once('error', (error) => {
  process.stderr.write(`redis-supervisor: cannot start redis-server: ${error.message}\n`);
  process.exit(127);
});
redis.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
if (redis.pid !== undefined) process.stdout.write(`${JSON.stringify({ pid: redis.pid })}\n`);

let stopping = false;
function stopRedis() {
  if (stopping) return;
  stopping = true;
  if (redis.exitCode !== null || redis.signalCode !== null) return;
  redis.kill('SIGTERM');
  setTimeout(() => redis.kill('SIGKILL'), STOP_GRACE_MS).unref();
}

process.stdin.on('end', stopRedis);
process.stdin.on('close', stopRedis);
process.stdin.on('error', stopRedis);
process.stdin.resume();
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, stopRedis);
