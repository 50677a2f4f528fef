// Child process of the sim-scale section: one simulation of a large fleet (coordinator, worker and
// device hosts in this process, redis-server beside it), so its peak RSS is its own. Prints setup
// progress on stderr and one `BENCH_RESULT <json>` line on stdout.
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { parseScenario } from '../../simulations/src/scenario/load.js';
import { preloadTfjs } from '../../simulations/src/runner/preload-tfjs.js';

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

// As `flotilla simulate` starts a run (cli/top-commands.ts): tfjs is preloaded before the runner's
// modules import it.
preloadTfjs();
const { prepareBaseModel, simulateWithPrivateRedis } = await import('../lib/sim-child.js');

if (values.prepare) await prepareBaseModel(scenario, values.cache ?? tmpdir());

const run = await simulateWithPrivateRedis({ scenario, cacheDir: values.cache });
const { result } = run;
process.stdout.write(
  `BENCH_RESULT ${JSON.stringify({
    devices,
    perRound,
    setupMs: result.setupMs,
    roundMs: result.metrics.slice(1).map((m) => m.timings?.total_ms ?? Number.NaN),
    decisions: result.metrics.slice(1).map((m) => m.decision),
    accepted: result.metrics.slice(1).map((m) => m.participants),
    nodePeakRssMb: run.nodePeakRssMb,
    redisPeakRssMb: run.redisPeakRssMb,
    backend: result.backend,
  })}\n`,
);
