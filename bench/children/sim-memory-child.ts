// Child process of the sim-memory section: the demo task (simulations/scenarios/demo.yaml) with 10
// devices, coordinator, worker and device hosts in this process and redis-server beside it, so the
// peak RSS is this run's own. Prints one `BENCH_RESULT <json>` line on stdout: the peaks, and the
// run's numbers (accuracies, decisions) so a change that saves memory can be checked to keep them.
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { loadScenario } from '../../simulations/src/scenario/load.js';
import { preloadTfjs } from '../../simulations/src/runner/preload-tfjs.js';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    devices: { type: 'string', default: '10' },
    cache: { type: 'string' },
    /** Only build the data and train (cache) the base model, then exit. */
    prepare: { type: 'boolean', default: false },
  },
  strict: true,
});
const devices = Number(values.devices);
if (!Number.isInteger(devices) || devices < 1) {
  process.stderr.write('usage: sim-memory-child [--devices N] [--cache DIR] [--prepare]\n');
  process.exit(2);
}
const demo = loadScenario('demo');
const scenario = { ...demo, devices, devicesPerRound: Math.min(demo.devicesPerRound, devices) };

// As `flotilla simulate` starts a run (cli/top-commands.ts): tfjs is preloaded before the runner's
// modules import it.
preloadTfjs();
const { prepareBaseModel, simulateWithPrivateRedis } = await import('../lib/sim-child.js');

// The base model is trained first, as `npm run demo` finds it after its first run.
if (values.prepare) await prepareBaseModel(scenario, values.cache ?? tmpdir());

const run = await simulateWithPrivateRedis({ scenario, cacheDir: values.cache, progress: false });
const { result } = run;
process.stdout.write(
  `BENCH_RESULT ${JSON.stringify({
    devices,
    rounds: scenario.rounds,
    nodePeakRssMb: run.nodePeakRssMb,
    supervisorPeakRssMb: run.supervisorPeakRssMb,
    redisPeakRssMb: run.redisPeakRssMb,
    backend: result.backend,
    setupMs: result.setupMs,
    roundMs: result.metrics.slice(1).map((m) => m.timings?.total_ms ?? Number.NaN),
    baseDigest: result.base.digest,
    accuracy: result.metrics.map((m) => m.accuracy),
    loss: result.metrics.map((m) => m.loss),
    decisions: result.metrics.map((m) => m.decision),
    participants: result.metrics.map((m) => m.participants),
    perDeviceMean: result.perDevice?.summary.mean ?? null,
  })}\n`,
);
