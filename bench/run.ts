// `npm run bench [-- --quick] [-- --only <section>]`: prints a table of ratios measured side by side
// in this run and writes bench/results.json with every figure and the machine's facts.
import { writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatTable, type BenchRow, type SectionResult } from './lib/report.js';
import { runAggregation } from './sections/aggregation.js';
import { runCli } from './sections/cli.js';
import { runCrypto } from './sections/crypto.js';
import { INGEST_KEYS, runIngest } from './sections/ingest.js';
import { ROBUST_KEYS } from './sections/robust.js';
import { ROUND_OVERHEAD_KEYS, runRoundOverhead } from './sections/round-overhead.js';
import { SIM_MEMORY_KEYS, runSimMemory } from './sections/sim-memory.js';
import { SIM_SCALE_KEYS, runSimScale } from './sections/sim-scale.js';
import { runTraining } from './sections/training.js';

const SECTIONS = {
  aggregation: (quick: boolean) => Promise.resolve(runAggregation({ quick })),
  crypto: (quick: boolean) => Promise.resolve(runCrypto({ quick })),
  training: (quick: boolean) => runTraining({ quick }),
  ingest: (quick: boolean) => runIngest({ quick }),
  'round-overhead': (quick: boolean) => runRoundOverhead({ quick }),
  'sim-scale': (quick: boolean) => runSimScale({ quick }),
  'sim-memory': () => runSimMemory(),
  cli: (quick: boolean) => Promise.resolve(runCli({ quick })),
} satisfies Record<string, (quick: boolean) => Promise<SectionResult>>;
type SectionName = keyof typeof SECTIONS;
const isSection = (name: string): name is SectionName => Object.hasOwn(SECTIONS, name);

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    out: { type: 'string' },
  },
  strict: true,
});
const quick = values.quick;
const only = (values.only ?? []).flatMap((s) => s.split(','));
for (const name of only) {
  if (!isSection(name)) {
    process.stderr.write(`unknown section '${name}'; sections: ${Object.keys(SECTIONS).join(', ')}\n`);
    process.exit(2);
  }
}
const selected = (Object.keys(SECTIONS) as SectionName[]).filter(
  (n) => only.length === 0 || only.includes(n),
);
const outPath = values.out ?? fileURLToPath(new URL('./results.json', import.meta.url));

const cpuList = cpus();
const machine = {
  cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
  cores: cpuList.length,
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  totalMemoryGB: totalmem() / 1e9,
  freeMemoryGBAtStart: freemem() / 1e9,
  loadAverageAtStart: loadavg(),
};
process.stderr.write(
  `bench: ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}; sections: ${selected.join(', ')}${quick ? ' (--quick)' : ''}\n`,
);

const started = Date.now();
const rows: BenchRow[] = [];
const sections: Record<string, unknown> = {};
const failures: Record<string, string> = {};
const headlineKeys = [
  ...ROBUST_KEYS,
  ...SIM_SCALE_KEYS,
  ...INGEST_KEYS,
  ...ROUND_OVERHEAD_KEYS,
  ...SIM_MEMORY_KEYS,
];
const topKeys: Record<string, number | null> = Object.fromEntries(headlineKeys.map((k) => [k, null]));
for (const name of selected) {
  const t0 = Date.now();
  process.stderr.write(`bench: ${name}…\n`);
  try {
    const result = await SECTIONS[name](quick);
    rows.push(...result.rows);
    sections[name] = { ...result.details, seconds: (Date.now() - t0) / 1000 };
    Object.assign(topKeys, result.keys);
  } catch (error) {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    failures[name] = message;
    process.stderr.write(`bench: section ${name} failed: ${message}\n`);
  }
  process.stderr.write(`bench: ${name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}

const aggregation = sections.aggregation as { fedavgVsCopyRatio?: number } | undefined;
const training = sections.training as { backends?: unknown } | undefined;
const results = {
  generatedAt: new Date().toISOString(),
  mode: quick ? 'quick' : 'full',
  sections: selected,
  machine: { ...machine, loadAverageAtEnd: loadavg() },
  tfjsBackends: training?.backends ?? null,
  fedavgVsCopyRatio: aggregation?.fedavgVsCopyRatio ?? null,
  // Headline keys of sections (e.g. sim-scale's sim10kSetupMs); null when the section did not run.
  ...topKeys,
  seconds: (Date.now() - started) / 1000,
  rows,
  details: sections,
  failures,
};
writeFileSync(outPath, `${JSON.stringify(results, null, 2)}\n`);

process.stdout.write(
  `Flotilla bench (${quick ? 'quick' : 'full'}): ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}, ` +
    `load avg ${machine.loadAverageAtStart.map((l) => l.toFixed(2)).join('/')} at start\n\n`,
);
process.stdout.write(`${formatTable(rows)}\n\nwrote ${outPath} in ${results.seconds.toFixed(0)} s\n`);
if (Object.keys(failures).length > 0) {
  process.stdout.write(`failed sections: ${Object.keys(failures).join(', ')} (see stderr)\n`);
  process.exitCode = 1;
}
