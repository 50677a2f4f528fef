// Child process of the sim-scale section: one simulation of a large fleet (coordinator, worker and
// device hosts in this process, redis-server beside it), so its peak RSS is its own. Prints setup
// progress on stderr and one `BENCH_RESULT <json>` line on stdout.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startEmbeddedRedis } from '@flotilla/coordinator/shared';
import { parseScenario } from '../../simulations/src/scenario/load.js';
import { runSimulation } from '../../simulations/src/runner/run-simulation.js';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    devices: { type: 'string' },
    'per-round': { type: 'string', default: '100' },
    rounds: { type: 'string', default: '3' },
    cache: { type: 'string' },
    /** Only build the data and train (cache) the base model, then exit. */
    prepare: { type: 'boolean', default: false },
  },
  strict: true,
});
const devices = Number(values.devices);
const perRound = Number(values['per-round']);
const rounds = Number(values.rounds);
if (!Number.isInteger(devices) || devices < 1 || !Number.isInteger(perRound) || !Number.isInteger(rounds)) {
  process.stderr.write('usage: sim-scale-child --devices N [--per-round K] [--rounds R] [--cache DIR]\n');
  process.exit(2);
}

/** Training examples drawn per domain: 15 per device at 10,000 devices after the 30% test/holdout cut. */
const SYNTHETIC_EXAMPLES = 215_000;

/** Peak resident set of a process in MB (VmHWM), or null when /proc is not there. */
function peakRssMb(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kb === undefined ? null : Number(kb) / 1024;
  } catch {
    return null;
  }
}

// Synthetic task (32 features, 10 classes), one pool for every fleet size (15 training examples
// per device at 10,000 devices), so every run has the same data and base model; the validation
// gate is off so every round's quorum is decided by the fleet alone.
const scenario = parseScenario(`
name: scale-${devices}
dataset: synthetic
data: { syntheticExamples: ${SYNTHETIC_EXAMPLES} }
devices: ${devices}
devicesPerRound: ${perRound}
minReports: ${Math.ceil(perRound / 2)}
rounds: ${rounds}
partition: { scheme: iid, maxExamplesPerDevice: 15 }
adapter: { mode: ffa-lora, r: 8, alpha: 16, targetModules: [hidden, out] }
training: { maxSteps: 5, batchSize: 8, validationTolerance: 1000000000 }
strategy: { name: fedavg, loraRule: ffa }
`);

if (values.prepare) {
  // The base model runSimulation asks for: the same cache entry.
  const { taskBaseModel } = await import('../../simulations/src/model/task-base-model.js');
  const { scenarioTask } = await import('../../simulations/src/runner/scenario-data.js');
  await taskBaseModel({ scenario, task: scenarioTask(scenario), stateDir: values.cache ?? tmpdir() });
  process.stdout.write('BENCH_RESULT {"prepared":true}\n');
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-sim-'));
const redis = await startEmbeddedRedis({ dataDir: join(dir, 'redis') });
try {
  const result = await runSimulation({
    scenario,
    stateDir: join(dir, 'state'),
    cacheDir: values.cache ?? join(dir, 'cache'),
    redisUrl: redis.url,
  });
  const roundMs = result.metrics.slice(1).map((m) => m.timings?.total_ms ?? Number.NaN);
  const nodePeakMb = process.resourceUsage().maxRSS / 1024;
  const redisPeakMb = peakRssMb(redis.pid);
  process.stdout.write(
    `BENCH_RESULT ${JSON.stringify({
      devices,
      perRound,
      setupMs: result.setupMs,
      roundMs,
      decisions: result.metrics.slice(1).map((m) => m.decision),
      accepted: result.metrics.slice(1).map((m) => m.participants),
      nodePeakRssMb: nodePeakMb,
      redisPeakRssMb: redisPeakMb,
      backend: result.backend,
    })}\n`,
  );
} finally {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
